import type { ByteQueue } from './byte-queue.js';

/**
 * Awaitable reads of exactly `n` bytes from a ByteQueue, for the handshakes (the NBD
 * server's negotiation, the NBD client's) whose code reads field by field across awaits.
 * The bytes come as a view of the queue's chunk when they lie in one, else as a copy; so
 * the queue must be fed chunks nobody reuses (a socket's 'data' events, or copies), never
 * receive arenas, which go back to their pool once consumed.
 */
export class ExactReader {
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private error: Error | null = null;

  constructor(readonly queue: ByteQueue) {}

  read(n: number): Promise<Buffer> {
    if (this.error) return Promise.reject(this.error);
    if (this.waiter) return Promise.reject(new Error('ExactReader: one read at a time'));
    if (this.queue.length >= n) return Promise.resolve(this.queue.readContiguous(n, false));
    return new Promise((resolve, reject) => (this.waiter = { n, resolve, reject }));
  }

  /** Bytes needed by the read waiting for them, or 0 when none waits. */
  get wanted(): number {
    return this.waiter?.n ?? 0;
  }

  /** Bytes were pushed into the queue: complete the waiting read if they suffice. */
  fed(): void {
    const w = this.waiter;
    if (!w || this.queue.length < w.n) return;
    this.waiter = null;
    w.resolve(this.queue.readContiguous(w.n, false));
  }

  /** No more bytes will come: the waiting read and every later one reject with `error`. */
  fail(error: Error): void {
    this.error ??= error;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(error);
  }
}
