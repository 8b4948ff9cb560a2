import type { Socket } from 'node:net';
import type { BufferPool } from '../../fabric/buffers.js';
import { SIMPLE_REPLY_SIZE } from '../../fabric/protocols/nbd.js';
import { StagedHeaders } from '../../fabric/staged-headers.js';
import type { NbdRequest } from './request-reader.js';
import {
  OFFSET_DATA_HEADER_SIZE,
  blockStatusChunk,
  errorChunk,
  offsetDataHeader,
  offsetHoleChunk,
  putOffsetDataHeader,
  putSimpleReply,
  simpleReply,
} from './wire.js';

/** One piece of a sparse read reply: data from the read buffer, or a hole. */
export interface ReadSegment {
  /** Offset within the request. */
  readonly at: number;
  readonly length: number;
  readonly hole: boolean;
}

/**
 * Puts replies on the socket. Each reply goes out in one batch (cork/uncork: one writev
 * of header and payload), so replies never interleave and Nagle never splits a small
 * one. Read payloads go out as the pooled buffer itself, returned to the pool once the
 * socket has written it.
 *
 * Replies are held until the current turn of the event loop ends (`hold`), so all that
 * complete in one turn — the replies to a burst of requests a fast device serves at once,
 * or every completion the poll phase delivered from the thread pool or a remote server —
 * leave in one writev rather than one system call each. Within it, the small replies and
 * read headers of a run are encoded side by side (StagedHeaders): one socket.write for the
 * run, not one per reply; read payloads are still written as they are, never copied.
 */
export class ReplyWriter {
  private holding = false;
  private readonly staged: StagedHeaders;

  constructor(
    private readonly socket: Socket,
    readonly structured: boolean,
    private readonly pool: BufferPool,
  ) {
    this.staged = new StagedHeaders((bytes) => void socket.write(bytes));
  }

  /** Keep what is written from now on in the socket until this turn of the event loop ends. */
  hold(): void {
    if (this.holding) return;
    this.holding = true;
    this.socket.cork();
    setImmediate(this.release);
  }

  private readonly release = (): void => {
    this.holding = false;
    if (this.open) this.staged.flush();
    else this.staged.discard();
    this.socket.uncork();
  };

  private get open(): boolean {
    return !this.socket.destroyed && this.socket.writable;
  }

  ok(req: NbdRequest): void {
    // A simple reply is allowed for any payload-less success, structured or not.
    if (!this.open) return;
    this.hold();
    const at = this.staged.reserve(SIMPLE_REPLY_SIZE);
    putSimpleReply(this.staged.slab, at, req.cookieHi, req.cookieLo, 0);
  }

  error(req: NbdRequest, errno: number, message: string): void {
    if (!this.open) return;
    this.hold();
    this.staged.flush();
    this.socket.write(
      this.structured ? errorChunk(req.cookieHi, req.cookieLo, errno, message) : simpleReply(req.cookieHi, req.cookieLo, errno),
    );
  }

  /** A successful read: the whole buffer as one reply (its header staged with those before it). */
  readData(req: NbdRequest, data: Buffer): void {
    if (!this.open) {
      this.pool.release(data);
      return;
    }
    this.hold();
    const staged = this.staged;
    if (this.structured) {
      const at = staged.reserve(OFFSET_DATA_HEADER_SIZE);
      putOffsetDataHeader(staged.slab, at, req.cookieHi, req.cookieLo, req.offset, data.length, true);
    } else {
      const at = staged.reserve(SIMPLE_REPLY_SIZE);
      putSimpleReply(staged.slab, at, req.cookieHi, req.cookieLo, 0);
    }
    staged.flush();
    this.socket.write(data, () => this.pool.release(data));
  }

  /** A sparse read (structured replies only): data chunks from `data`, hole chunks elsewhere. */
  readSegments(req: NbdRequest, segments: readonly ReadSegment[], data: Buffer | null): void {
    const parts: Buffer[] = [];
    for (let i = 0; i < segments.length; i++) {
      const s = segments[i]!;
      const last = i === segments.length - 1;
      if (s.hole) parts.push(offsetHoleChunk(req.cookieHi, req.cookieLo, req.offset + s.at, s.length, last));
      else {
        parts.push(offsetDataHeader(req.cookieHi, req.cookieLo, req.offset + s.at, s.length, last));
        parts.push(data!.subarray(s.at, s.at + s.length));
      }
    }
    this.sendWithPayload(parts, data);
  }

  blockStatus(req: NbdRequest, contextId: number, descriptors: readonly number[]): void {
    if (!this.open) return;
    this.hold();
    this.staged.flush();
    this.socket.write(blockStatusChunk(req.cookieHi, req.cookieLo, contextId, descriptors, true));
  }

  private sendWithPayload(parts: readonly Buffer[], pooled: Buffer | null): void {
    if (!this.open) {
      if (pooled) this.pool.release(pooled);
      return;
    }
    const socket = this.socket;
    this.hold();
    this.staged.flush();
    socket.cork();
    const last = parts.length - 1;
    for (let i = 0; i < last; i++) socket.write(parts[i]!);
    if (pooled) socket.write(parts[last]!, () => this.pool.release(pooled));
    else socket.write(parts[last]!);
    socket.uncork();
  }
}
