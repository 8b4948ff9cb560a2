import { Socket } from 'node:net';

/**
 * Makes an accepted socket read into buffers we supply, like the `onread` option that
 * Node offers only for sockets it creates (connect). Node 20 has no public way to set it
 * on a server's accepted socket, so this reaches into net.Socket's internals: the
 * per-socket kBuffer/kBufferCb/kBufferGen slots that `onread` fills, and the handle's
 * useUserBuffer(). Everything private stays in this file; when those internals are not
 * there it returns false and the caller goes on reading 'data' events.
 *
 * It may be called on a socket that is already reading through 'data' events, provided the
 * stream holds no bytes of its own (readableLength 0): from the next read on, the handle
 * fills `next()`'s buffer, `onRead` gets the filled part, then `next()` names where the
 * following read goes. pause() and resume() keep working (net.Socket stops and starts the
 * handle itself for such sockets).
 */
export function readIntoOwnBuffers(socket: Socket, next: () => Buffer, onRead: (data: Buffer) => void): boolean {
  const internals = socket as unknown as Record<string | symbol, unknown>;
  const handle = internals['_handle'] as { useUserBuffer?: (buf: Uint8Array) => void } | null | undefined;
  if (!handle || typeof handle.useUserBuffer !== 'function') return false;
  const slots = bufferSlots(socket);
  if (!slots || internals[slots.kBuffer] !== null) return false;
  const first = next();
  internals[slots.kBuffer] = first;
  internals[slots.kBufferGen] = next;
  internals[slots.kBufferCb] = (nread: number, buf: Buffer): void => onRead(buf.subarray(0, nread));
  handle.useUserBuffer(first);
  return true;
}

/** Whether this Node has the socket internals readIntoOwnBuffers relies on (for the start-up log). */
export function ownReadBuffersSupported(): boolean {
  const probe = new Socket();
  try {
    return bufferSlots(probe) !== undefined;
  } finally {
    probe.destroy();
  }
}

function bufferSlots(socket: Socket): { kBuffer: symbol; kBufferCb: symbol; kBufferGen: symbol } | undefined {
  const slots = new Map(Object.getOwnPropertySymbols(socket).map((s) => [s.description, s]));
  const kBuffer = slots.get('kBuffer');
  const kBufferCb = slots.get('kBufferCb');
  const kBufferGen = slots.get('kBufferGen');
  return kBuffer && kBufferCb && kBufferGen ? { kBuffer, kBufferCb, kBufferGen } : undefined;
}
