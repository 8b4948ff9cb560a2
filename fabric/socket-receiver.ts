import type { Socket } from 'node:net';
import { ReceiveArenas, type BufferPool } from './buffers.js';
import { ByteQueue } from './byte-queue.js';
import { readIntoOwnBuffers } from './own-read-buffers.js';

/** Where a connection's socket reads land. */
export type ReceivePath = 'arenas' | 'data-events';

/**
 * Connections by the path they settled on, since the process started: a test asserts the
 * fast path is engaged, so a Node upgrade that removes the internals it needs fails loudly.
 */
export const receivePathCounts: Record<ReceivePath, number> = { arenas: 0, 'data-events': 0 };

/**
 * Feeds one server socket's bytes into its ByteQueue. A connection starts on plain 'data'
 * events, whose chunks Node allocates per read: a socket that never gets past its
 * handshake or login pins no receive arena, and the handshake may keep views of its bytes.
 * Once the session is established, `useArenas` moves the socket onto pooled receive arenas
 * (reference-counted, fabric/buffers.ts), so data-path reads cost no allocation and write
 * payloads reach the device as views of them.
 */
export class SocketReceiver {
  readonly queue = new ByteQueue();
  private arenas: ReceiveArenas | null = null;
  private closed = false;
  path: ReceivePath = 'data-events';

  constructor(
    private readonly socket: Socket,
    /** Called after bytes were queued. */
    private readonly onBytes: () => void,
  ) {
    socket.on('data', (chunk: Buffer) => {
      if (this.closed) return;
      this.queue.push(chunk, null);
      this.onBytes();
    });
  }

  /**
   * The session is established: read into receive arenas from `pool` from now on (null:
   * stay on 'data' events), if Node's socket internals allow it and the stream holds no
   * bytes of its own (they would be delivered after newer ones). Either way the connection
   * keeps the path returned for its lifetime.
   */
  established(pool: BufferPool | null): ReceivePath {
    if (this.closed || this.arenas) return this.path;
    if (pool && this.socket.readableLength === 0) {
      const arenas = new ReceiveArenas(pool);
      const own = readIntoOwnBuffers(
        this.socket,
        () => arenas.region(),
        (data) => {
          if (this.closed) return; // the arenas were closed with the receiver
          const { chunk, owner } = arenas.filled(data.length);
          this.queue.push(chunk, owner);
          this.onBytes();
        },
      );
      if (own) {
        this.arenas = arenas;
        this.path = 'arenas';
      }
    }
    receivePathCounts[this.path]++;
    return this.path;
  }

  /** The socket is gone: drop queued bytes and the arena being filled. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.clear();
    this.arenas?.close();
  }
}
