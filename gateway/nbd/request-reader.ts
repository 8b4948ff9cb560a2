import type { Retained } from '../../fabric/buffers.js';
import { NBD_CMD_WRITE, NBD_REQUEST_MAGIC, REQUEST_HEADER_SIZE } from '../../fabric/protocols/nbd.js';
import type { ByteQueue } from '../../fabric/byte-queue.js';
import { NbdProtocolError } from './errors.js';
import { readU64 } from './wire.js';

export interface NbdRequest {
  readonly flags: number;
  readonly type: number;
  /** The client's 64-bit cookie (handle), kept as two halves to echo back verbatim. */
  readonly cookieHi: number;
  readonly cookieLo: number;
  readonly offset: number;
  readonly length: number;
  /** A write's data as slices of the socket's chunks; null for other commands. */
  payload: Buffer[] | null;
  /** What keeps the payload's memory from reuse: release each once the device is done. */
  holds: Retained[] | null;
  /** A write larger than we accept: its payload is being discarded, not kept. */
  oversized: boolean;
}

/**
 * Cuts the transmission byte stream into requests. Write payloads stay in the socket's
 * chunks; one too large to accept is skipped as it arrives instead of being buffered.
 */
export class RequestReader {
  private pending: NbdRequest | null = null;
  private discarding = 0;

  constructor(
    private readonly queue: ByteQueue,
    private readonly maxWritePayload: number,
  ) {}

  /** The next complete request, or null until more bytes arrive. Throws on bad magic. */
  next(): NbdRequest | null {
    const queue = this.queue;
    if (this.discarding > 0) {
      this.discarding -= queue.skip(this.discarding);
      if (this.discarding > 0) return null;
    }
    let request = this.pending;
    if (request === null) {
      if (queue.length < REQUEST_HEADER_SIZE) return null;
      // A header cut by the socket's reads is parsed where it lies: no copy, whatever the cut.
      const h = queue.peek(REQUEST_HEADER_SIZE) ?? queue;
      if (h.readUInt32BE(0) !== NBD_REQUEST_MAGIC) throw new NbdProtocolError(`bad request magic 0x${h.readUInt32BE(0).toString(16)}`);
      request = {
        flags: h.readUInt16BE(4),
        type: h.readUInt16BE(6),
        cookieHi: h.readUInt32BE(8),
        cookieLo: h.readUInt32BE(12),
        offset: readU64(h, 16),
        length: h.readUInt32BE(24),
        payload: null,
        holds: null,
        oversized: false,
      };
      queue.skip(REQUEST_HEADER_SIZE);
      if (request.type !== NBD_CMD_WRITE || request.length === 0) return request;
      if (request.length > this.maxWritePayload) {
        request.oversized = true;
        this.discarding = request.length - queue.skip(request.length);
        return request;
      }
    }
    if (queue.length < request.length) {
      this.pending = request;
      return null;
    }
    this.pending = null;
    request.holds = [];
    request.payload = queue.readSlices(request.length, request.holds);
    return request;
  }

  /** True while a write's payload is only partly received. */
  get midRequest(): boolean {
    return this.pending !== null || this.discarding > 0;
  }
}
