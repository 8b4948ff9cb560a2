/**
 * Parses the transmission phase's replies as bytes arrive: simple replies and structured
 * chunks (OFFSET_DATA, OFFSET_HOLE, BLOCK_STATUS, ERROR, NONE), in any order across requests.
 * Read data goes straight into the request's target buffer: `directTarget()` tells the socket
 * to receive the rest of a payload there, so large reads are never copied in user space; what
 * arrives in the shared receive buffer is copied once and counted.
 */
import type { Extent } from '../../device.js';
import { countCopy } from '../../copies.js';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_READ,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STATE_HOLE,
  NBD_STATE_ZERO,
  NBD_STRUCTURED_REPLY_MAGIC,
  SIMPLE_REPLY_SIZE,
  STRUCTURED_REPLY_HEADER_SIZE,
} from '../../protocols/nbd.js';
import { blockCodeFromNbd } from './errors.js';
import type { NbdRequest } from './request.js';

export interface ReplySink {
  lookup(cookie: number): NbdRequest | undefined;
  /** The request is answered (successfully or with its error code set). */
  complete(request: NbdRequest): void;
  /** The stream makes no sense any more; the connection must be dropped. */
  violation(message: string): void;
}

const HEADER = 0;
const COLLECT = 1;
const DATA = 2;
const SKIP = 3;

/** What a collected chunk payload is. */
const FOR_OFFSET_DATA = 0;
const FOR_HOLE = 1;
const FOR_BLOCK_STATUS = 2;
const FOR_ERROR = 3;

const ERROR_TYPE_BIT = 1 << 15;
/** Payloads at least this long are received straight into the target. */
const DIRECT_MIN = 8 * 1024;
const SMALL_COLLECT = 64;

export class ReplyParser {
  private state = HEADER;
  private readonly header = Buffer.alloc(STRUCTURED_REPLY_HEADER_SIZE);
  private have = 0;
  private need = 4;
  private readonly small = Buffer.alloc(SMALL_COLLECT);
  private collectBuf = this.small;
  private collectFor = 0;
  private request: NbdRequest | undefined = undefined;
  /** Structured chunk in progress: DONE flag, chunk type, and bytes of payload. */
  private done = false;
  private chunkType = 0;
  private chunkLength = 0;
  private dataTarget: Buffer | undefined = undefined;
  private dataPos = 0;
  private dataEnd = 0;
  private skipLeft = 0;

  constructor(
    private readonly sink: ReplySink,
    private readonly allocationContext: number | undefined,
    private readonly structured: boolean,
  ) {}

  /** Where the socket should put its next bytes, if a long read payload is expected. */
  directTarget(): Buffer | undefined {
    if (this.state !== DATA || this.dataEnd - this.dataPos < DIRECT_MIN) return undefined;
    return this.dataTarget!.subarray(this.dataPos, this.dataEnd);
  }

  /**
   * How many bytes to take next so that a read's payload starts a fresh receive (and so can
   * go in place): the rest of a reply header, plus an OFFSET_DATA chunk's offset.
   */
  bytesBeforePayload(): number {
    if (this.state === HEADER) {
      const header = this.need === 4 ? (this.structured ? STRUCTURED_REPLY_HEADER_SIZE + 8 : SIMPLE_REPLY_SIZE) : this.need;
      return header - this.have;
    }
    if (this.state === COLLECT && this.collectFor === FOR_OFFSET_DATA) return this.need - this.have;
    return 0;
  }

  /** Bytes were received into the slice directTarget() handed out. */
  receivedDirect(n: number): void {
    this.dataPos += n;
    if (this.dataPos === this.dataEnd) this.endPayload();
  }

  consume(buf: Buffer, start: number, end: number): void {
    let at = start;
    while (at < end) {
      switch (this.state) {
        case HEADER: {
          const n = Math.min(this.need - this.have, end - at);
          buf.copy(this.header, this.have, at, at + n);
          this.have += n;
          at += n;
          if (this.have === this.need) this.onHeaderBytes();
          break;
        }
        case COLLECT: {
          const n = Math.min(this.need - this.have, end - at);
          buf.copy(this.collectBuf, this.have, at, at + n);
          this.have += n;
          at += n;
          if (this.have === this.need) this.onCollected();
          break;
        }
        case DATA: {
          const n = Math.min(this.dataEnd - this.dataPos, end - at);
          buf.copy(this.dataTarget!, this.dataPos, at, at + n);
          countCopy(n);
          this.dataPos += n;
          at += n;
          if (this.dataPos === this.dataEnd) this.endPayload();
          break;
        }
        case SKIP: {
          const n = Math.min(this.skipLeft, end - at);
          this.skipLeft -= n;
          at += n;
          if (this.skipLeft === 0) this.endChunk();
          break;
        }
      }
    }
  }

  private onHeaderBytes(): void {
    const magic = this.header.readUInt32BE(0);
    if (this.need === 4) {
      if (magic === NBD_SIMPLE_REPLY_MAGIC) this.need = SIMPLE_REPLY_SIZE;
      else if (magic === NBD_STRUCTURED_REPLY_MAGIC) this.need = STRUCTURED_REPLY_HEADER_SIZE;
      else return this.sink.violation(`bad reply magic 0x${magic.toString(16)}`);
      return;
    }
    const cookie = this.header.readUInt32BE(12);
    const request = this.sink.lookup(cookie);
    if (!request || this.header.readUInt32BE(8) !== 0) return this.sink.violation(`reply for unknown cookie ${cookie}`);
    this.request = request;
    if (magic === NBD_SIMPLE_REPLY_MAGIC) return this.onSimpleReply(request);

    this.done = (this.header.readUInt16BE(4) & NBD_REPLY_FLAG_DONE) !== 0;
    this.chunkType = this.header.readUInt16BE(6);
    this.chunkLength = this.header.readUInt32BE(16);
    const length = this.chunkLength;
    switch (this.chunkType) {
      case NBD_REPLY_TYPE_NONE:
        if (length !== 0) return this.sink.violation('NONE chunk with a payload');
        return this.endChunk();
      case NBD_REPLY_TYPE_OFFSET_DATA:
        if (request.command !== NBD_CMD_READ || length < 8) return this.sink.violation('unexpected OFFSET_DATA chunk');
        return this.collect(8, FOR_OFFSET_DATA);
      case NBD_REPLY_TYPE_OFFSET_HOLE:
        if (request.command !== NBD_CMD_READ || length !== 12) return this.sink.violation('unexpected OFFSET_HOLE chunk');
        return this.collect(12, FOR_HOLE);
      case NBD_REPLY_TYPE_BLOCK_STATUS:
        if (request.command !== NBD_CMD_BLOCK_STATUS || length < 4 || (length - 4) % 8 !== 0) {
          return this.sink.violation('unexpected BLOCK_STATUS chunk');
        }
        return this.collect(length, FOR_BLOCK_STATUS);
      default:
        if (this.chunkType & ERROR_TYPE_BIT) {
          if (length < 4) return this.sink.violation('short error chunk');
          return this.collect(length, FOR_ERROR);
        }
        // Unknown non-error chunk types may be ignored, per the spec.
        if (length === 0) return this.endChunk();
        this.skipLeft = length;
        this.state = SKIP;
    }
  }

  private onSimpleReply(request: NbdRequest): void {
    const error = this.header.readUInt32BE(4);
    this.done = true;
    if (error !== 0) {
      request.errorCode = blockCodeFromNbd(error);
      return this.endChunk();
    }
    if (request.command === NBD_CMD_READ && request.length > 0) {
      return this.startData(request.target!, 0, request.length);
    }
    this.endChunk();
  }

  private collect(length: number, purpose: number): void {
    this.collectBuf = length <= SMALL_COLLECT ? this.small : Buffer.allocUnsafe(length);
    this.collectFor = purpose;
    this.need = length;
    this.have = 0;
    this.state = COLLECT;
  }

  private onCollected(): void {
    const request = this.request!;
    const b = this.collectBuf;
    switch (this.collectFor) {
      case FOR_OFFSET_DATA: {
        const at = Number(b.readBigUInt64BE(0)) - request.offset;
        const length = this.chunkLength - 8;
        if (at < 0 || at + length > request.length) return this.sink.violation('OFFSET_DATA outside the request');
        if (length === 0) return this.endChunk();
        return this.startData(request.target!, at, at + length);
      }
      case FOR_HOLE: {
        const at = Number(b.readBigUInt64BE(0)) - request.offset;
        const length = b.readUInt32BE(8);
        if (at < 0 || at + length > request.length) return this.sink.violation('OFFSET_HOLE outside the request');
        request.target!.fill(0, at, at + length);
        return this.endChunk();
      }
      case FOR_BLOCK_STATUS: {
        if (b.readUInt32BE(0) === this.allocationContext) request.extents = parseExtents(b, this.chunkLength, request.length);
        return this.endChunk();
      }
      case FOR_ERROR: {
        request.errorCode ??= blockCodeFromNbd(b.readUInt32BE(0));
        if (this.chunkLength >= 6) {
          const messageLength = Math.min(b.readUInt16BE(4), this.chunkLength - 6);
          request.errorMessage = b.toString('utf8', 6, 6 + messageLength);
        }
        return this.endChunk();
      }
    }
  }

  private startData(target: Buffer, from: number, to: number): void {
    this.dataTarget = target;
    this.dataPos = from;
    this.dataEnd = to;
    this.state = DATA;
  }

  private endPayload(): void {
    this.dataTarget = undefined;
    this.endChunk();
  }

  private endChunk(): void {
    const request = this.request!;
    this.request = undefined;
    this.state = HEADER;
    this.have = 0;
    this.need = 4;
    if (this.done) this.sink.complete(request);
  }
}

/** base:allocation descriptors, clipped to the request (the last may run past its end). */
function parseExtents(b: Buffer, length: number, requested: number): Extent[] {
  const extents: Extent[] = [];
  let covered = 0;
  for (let at = 4; at + 8 <= length && covered < requested; at += 8) {
    const n = Math.min(b.readUInt32BE(at), requested - covered);
    if (n === 0) break;
    const flags = b.readUInt32BE(at + 4);
    extents.push({ length: n, hole: (flags & NBD_STATE_HOLE) !== 0, zero: (flags & NBD_STATE_ZERO) !== 0 });
    covered += n;
  }
  return extents;
}
