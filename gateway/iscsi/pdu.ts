import { BHS_LENGTH, DIGEST_LENGTH, FINAL_BIT, IMMEDIATE_BIT, OPCODE_MASK } from './constants.js';
import { crc32c, readDigest, writeDigest } from './digest.js';

/**
 * iSCSI PDU framing (RFC 7143 §11.2): a 48-byte Basic Header Segment, optional Additional
 * Header Segments, optional header digest, then a data segment padded to 4 bytes and an
 * optional data digest. Received data segments stay as slices of the socket's chunks.
 */

export interface Pdu {
  /** The 48-byte BHS (its own small buffer). */
  readonly bhs: Buffer;
  /** Additional header segments, if TotalAHSLength > 0. */
  readonly ahs?: Buffer;
  /** The data segment without padding, as received (slices, not concatenated). */
  readonly data: readonly Buffer[];
  readonly dataLength: number;
}

export const opcodeOf = (bhs: Buffer): number => bhs[0]! & OPCODE_MASK;
export const isImmediate = (bhs: Buffer): boolean => (bhs[0]! & IMMEDIATE_BIT) !== 0;
export const isFinal = (bhs: Buffer): boolean => (bhs[1]! & FINAL_BIT) !== 0;
export const dataSegmentLength = (bhs: Buffer): number => (bhs[5]! << 16) | (bhs[6]! << 8) | bhs[7]!;
export const ahsLength = (bhs: Buffer): number => bhs[4]! * 4;
export const itt = (bhs: Buffer): number => bhs.readUInt32BE(16);
export const pad4 = (n: number): number => (4 - (n & 3)) & 3;

/**
 * SAM LUN from the 8-byte LUN field: peripheral (0b00) and flat (0b01) addressing of the
 * first level, which is what initiators send for LUNs < 16384.
 */
export function lunOf(bhs: Buffer): number {
  return ((bhs[8]! & 0x3f) << 8) | bhs[9]!;
}

export function encodeLun(lun: number, bhs: Buffer): void {
  if (lun < 256) {
    bhs[8] = 0;
    bhs[9] = lun;
  } else {
    bhs[8] = 0x40 | ((lun >> 8) & 0x3f);
    bhs[9] = lun & 0xff;
  }
}

/** A fresh zeroed BHS, with room for a header digest after it. */
export function newBhs(opcode: number, flags: number): Buffer {
  const b = Buffer.alloc(BHS_LENGTH + DIGEST_LENGTH);
  b[0] = opcode;
  b[1] = flags;
  return b;
}

export function setDataSegmentLength(bhs: Buffer, n: number): void {
  bhs[5] = (n >>> 16) & 0xff;
  bhs[6] = (n >>> 8) & 0xff;
  bhs[7] = n & 0xff;
}

const ZERO_PAD = Buffer.alloc(4);

/**
 * The wire form of one outgoing PDU as a list of buffers for one corked write: header (with
 * digest if enabled), the data slices, padding, data digest. `bhs` must come from newBhs.
 */
export function frame(bhs: Buffer, data: readonly Buffer[], dataLength: number, headerDigest: boolean, dataDigest: boolean): Buffer[] {
  setDataSegmentLength(bhs, dataLength);
  const out: Buffer[] = [];
  if (headerDigest) {
    writeDigest(crc32c(bhs.subarray(0, BHS_LENGTH)), bhs, BHS_LENGTH);
    out.push(bhs);
  } else out.push(bhs.subarray(0, BHS_LENGTH));
  if (dataLength === 0) return out;
  for (const d of data) if (d.length > 0) out.push(d);
  const pad = pad4(dataLength);
  if (pad) out.push(ZERO_PAD.subarray(0, pad));
  if (dataDigest) {
    const dg = Buffer.allocUnsafe(DIGEST_LENGTH);
    writeDigest(crc32c(data, pad), dg, 0);
    out.push(dg);
  }
  return out;
}

/** Why a byte stream stopped being iSCSI; ERL 0 answers every one by dropping the connection. */
export class FramingError extends Error {
  override readonly name = 'FramingError';
  constructor(
    readonly kind: 'header-digest' | 'data-digest' | 'too-long' | 'bad-ahs',
    message: string,
    /** The offending PDU's header, when it could be read. */
    readonly bhs?: Buffer,
  ) {
    super(message);
  }
}

export interface FramingLimits {
  headerDigest: boolean;
  dataDigest: boolean;
  /** Our declared MaxRecvDataSegmentLength (login PDUs are held to the login default). */
  maxDataSegment: number;
}

/**
 * Cuts the TCP stream into PDUs. Chunks are queued as received; a PDU's data segment is
 * returned as subarrays of those chunks, so a 1 MiB write is never concatenated.
 * `limits` is read before each PDU, so digests switch on exactly after login.
 */
export class PduReader {
  private chunks: Buffer[] = [];
  private head = 0; // offset into chunks[0]
  private buffered = 0;

  constructor(private readonly limits: FramingLimits) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  get pendingBytes(): number {
    return this.buffered;
  }

  /** The next complete PDU, or undefined until more bytes arrive. Throws FramingError. */
  next(): Pdu | undefined {
    if (this.buffered < BHS_LENGTH) return undefined;
    const bhs = this.peek(BHS_LENGTH);
    const ahsLen = ahsLength(bhs);
    const dlen = dataSegmentLength(bhs);
    const hd = this.limits.headerDigest ? DIGEST_LENGTH : 0;
    if (dlen > this.limits.maxDataSegment) {
      throw new FramingError('too-long', `data segment of ${dlen} bytes exceeds MaxRecvDataSegmentLength ${this.limits.maxDataSegment}`, bhs);
    }
    const padded = dlen + pad4(dlen);
    const dd = dlen > 0 && this.limits.dataDigest ? DIGEST_LENGTH : 0;
    const total = BHS_LENGTH + ahsLen + hd + padded + dd;
    if (this.buffered < total) return undefined;

    this.skip(BHS_LENGTH);
    const ahs = ahsLen > 0 ? this.copyOut(ahsLen) : undefined;
    if (hd) {
      const got = readDigest(this.copyOut(DIGEST_LENGTH), 0);
      const want = crc32c(ahs ? [bhs, ahs] : bhs);
      if (got !== want) {
        this.skip(padded + dd);
        throw new FramingError('header-digest', `header digest mismatch (0x${got.toString(16)} != 0x${want.toString(16)})`, bhs);
      }
    }
    const data = dlen > 0 ? this.take(dlen) : [];
    const pad = padded - dlen;
    if (pad) this.skip(pad);
    if (dd) {
      const got = readDigest(this.copyOut(DIGEST_LENGTH), 0);
      const want = crc32c(data, pad);
      if (got !== want) throw new FramingError('data-digest', `data digest mismatch (0x${got.toString(16)} != 0x${want.toString(16)})`, bhs);
    }
    return { bhs, ahs, data, dataLength: dlen };
  }

  /** A private copy of the first n bytes without consuming them (headers only: small). */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length - this.head >= n) return Buffer.from(first.subarray(this.head, this.head + n));
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    let off = this.head;
    for (const c of this.chunks) {
      const k = Math.min(n - filled, c.length - off);
      c.copy(out, filled, off, off + k);
      filled += k;
      off = 0;
      if (filled === n) break;
    }
    return out;
  }

  private copyOut(n: number): Buffer {
    const b = this.peek(n);
    this.skip(n);
    return b;
  }

  /** Consume n bytes as slices of the received chunks. */
  private take(n: number): Buffer[] {
    const out: Buffer[] = [];
    while (n > 0) {
      const c = this.chunks[0]!;
      const k = Math.min(n, c.length - this.head);
      out.push(c.subarray(this.head, this.head + k));
      this.advance(k);
      n -= k;
    }
    return out;
  }

  private skip(n: number): void {
    while (n > 0) {
      const k = Math.min(n, this.chunks[0]!.length - this.head);
      this.advance(k);
      n -= k;
    }
  }

  private advance(k: number): void {
    this.head += k;
    this.buffered -= k;
    if (this.head === this.chunks[0]!.length) {
      this.chunks.shift();
      this.head = 0;
    }
  }
}

/** Join slices (for the few small payloads the transport itself must parse: text keys). */
export function joined(data: readonly Buffer[]): Buffer {
  return data.length === 1 ? data[0]! : Buffer.concat(data as Buffer[]);
}

/** The first n bytes of a slice list, still as slices. */
export function sliceData(data: readonly Buffer[], n: number, start = 0): Buffer[] {
  const out: Buffer[] = [];
  let skip = start;
  for (const d of data) {
    if (n <= 0) break;
    if (skip >= d.length) {
      skip -= d.length;
      continue;
    }
    const k = Math.min(d.length - skip, n);
    out.push(d.subarray(skip, skip + k));
    n -= k;
    skip = 0;
  }
  return out;
}
