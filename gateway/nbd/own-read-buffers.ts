import type { Socket } from 'node:net';

/**
 * Makes an accepted socket read into buffers we supply, like the `onread` option that
 * Node offers only for sockets it creates (connect). Node 20 has no public way to set it
 * on a server's accepted socket, so this reaches into net.Socket's internals: the
 * per-socket kBuffer/kBufferCb/kBufferGen slots that `onread` fills, and the handle's
 * useUserBuffer(). Everything private stays in this file; when those internals are not
 * there it returns false and the caller reads 'data' events as usual.
 *
 * The socket must not have started reading (accept it with pauseOnConnect) and is left
 * paused: resume() starts reading into `next()`'s buffer. After each read, `onRead` gets
 * the filled part of that buffer, then `next()` names where the following read goes.
 */
export function readIntoOwnBuffers(socket: Socket, next: () => Buffer, onRead: (data: Buffer) => void): boolean {
  const internals = socket as unknown as Record<string | symbol, unknown>;
  const handle = internals['_handle'] as { useUserBuffer?: (buf: Uint8Array) => void } | null | undefined;
  if (!handle || typeof handle.useUserBuffer !== 'function') return false;
  const slots = new Map(Object.getOwnPropertySymbols(socket).map((s) => [s.description, s]));
  const kBuffer = slots.get('kBuffer');
  const kBufferCb = slots.get('kBufferCb');
  const kBufferGen = slots.get('kBufferGen');
  if (!kBuffer || !kBufferCb || !kBufferGen || internals[kBuffer] !== null) return false;
  const first = next();
  internals[kBuffer] = first;
  internals[kBufferGen] = next;
  internals[kBufferCb] = (nread: number, buf: Buffer): void => onRead(buf.subarray(0, nread));
  handle.useUserBuffer(first);
  return true;
}
