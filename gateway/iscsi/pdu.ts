import type { Retained } from '../../fabric/buffers.js';
import type { ByteQueue } from '../../fabric/byte-queue.js';
import { BHS_LENGTH, DIGEST_LENGTH, FINAL_BIT, IMMEDIATE_BIT, OPCODE_MASK } from './constants.js';
import { crc32c, writeDigest } from './digest.js';

/**
 * iSCSI PDU framing (RFC 7143 §11.2): a 48-byte Basic Header Segment, optional Additional
 * Header Segments, optional header digest, then a data segment padded to 4 bytes and an
 * optional data digest. A received PDU is views of the socket's chunks, headers included.
 */

export interface Pdu {
  /** The 48-byte BHS, a view of the received bytes. */
  readonly bhs: Buffer;
  /** Additional header segments, if TotalAHSLength > 0. */
  readonly ahs?: Buffer;
  /** The data segment without padding, as received (slices, not concatenated). */
  readonly data: readonly Buffer[];
  readonly dataLength: number;
  /**
   * What keeps those views from reuse when they lie in receive arenas: release each once
   * the PDU is done with (`releasePdu`), or hand them on to whoever keeps the PDU's bytes.
   */
  holds: Retained[];
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

/**
 * A fresh zeroed BHS. Taken from Node's shared allocation pool (allocUnsafe, then zeroed):
 * Buffer.alloc would make an ArrayBuffer of its own for every response header, and their
 * allocation and collection showed as a tenth of the iSCSI server's time. Exactly 48 bytes,
 * so that it goes to the socket as it is (a header digest, when on, is a buffer of its own).
 */
export function newBhs(opcode: number, flags: number): Buffer {
  const b = Buffer.allocUnsafe(BHS_LENGTH).fill(0);
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
/** The data of every PDU without a data segment (never written to: Pdu.data is readonly). */
const NO_DATA: readonly Buffer[] = Object.freeze([]);

/**
 * The wire form of one outgoing PDU as a list of buffers for one corked write: header,
 * header digest if enabled, the data slices, padding, data digest. `bhs` must come from newBhs.
 */
export function frame(bhs: Buffer, data: readonly Buffer[], dataLength: number, headerDigest: boolean, dataDigest: boolean): Buffer[] {
  return frameInto([], bhs, data, dataLength, headerDigest, dataDigest);
}

/** frame(), appending to `out` (one list for a whole PDU train, no list per PDU); returns `out`. */
export function frameInto(out: Buffer[], bhs: Buffer, data: readonly Buffer[], dataLength: number, headerDigest: boolean, dataDigest: boolean): Buffer[] {
  setDataSegmentLength(bhs, dataLength);
  out.push(bhs);
  if (headerDigest) {
    const hg = Buffer.allocUnsafe(DIGEST_LENGTH);
    writeDigest(crc32c(bhs), hg, 0);
    out.push(hg);
  }
  if (dataLength === 0) return out;
  for (let i = 0; i < data.length; i++) if (data[i]!.length > 0) out.push(data[i]!);
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
 * Cuts the TCP stream into PDUs. Header, AHS and data segment are returned as views of the
 * queued chunks — a header cut by two socket reads into one receive arena is one view across
 * both (ByteQueue.readContiguous); only a cut where one arena ends and the next begins, or
 * on the plain 'data' path, copies its 48 bytes (counted) — each holding its
 * chunk's receive arena until the PDU is released, so a 1 MiB write is neither
 * concatenated nor copied. `limits` is read before each PDU, so digests switch on exactly
 * after login.
 */
export class PduReader {
  constructor(
    private readonly queue: ByteQueue,
    private readonly limits: FramingLimits,
  ) {}

  /** The next complete PDU, or undefined until more bytes arrive. Throws FramingError. */
  next(): Pdu | undefined {
    const q = this.queue;
    if (q.length < BHS_LENGTH) return undefined;
    const ahsLen = q.byteAt(4) * 4;
    const dlen = (q.byteAt(5) << 16) | (q.byteAt(6) << 8) | q.byteAt(7);
    const hd = this.limits.headerDigest ? DIGEST_LENGTH : 0;
    if (dlen > this.limits.maxDataSegment) {
      const bhs = Buffer.from(q.readContiguous(BHS_LENGTH, false));
      throw new FramingError('too-long', `data segment of ${dlen} bytes exceeds MaxRecvDataSegmentLength ${this.limits.maxDataSegment}`, bhs);
    }
    const padded = dlen + pad4(dlen);
    const dd = dlen > 0 && this.limits.dataDigest ? DIGEST_LENGTH : 0;
    if (q.length < BHS_LENGTH + ahsLen + hd + padded + dd) return undefined;

    const holds: Retained[] = [];
    const bhs = q.readContiguous(BHS_LENGTH, true, holds);
    const ahs = ahsLen > 0 ? q.readContiguous(ahsLen, true, holds) : undefined;
    if (hd) {
      const got = q.readUInt32LE(0);
      q.skip(DIGEST_LENGTH);
      const want = crc32c(ahs ? [bhs, ahs] : bhs);
      if (got !== want) {
        q.skip(padded + dd);
        const copy = Buffer.from(bhs);
        releaseHolds(holds);
        throw new FramingError('header-digest', `header digest mismatch (0x${got.toString(16)} != 0x${want.toString(16)})`, copy);
      }
    }
    const data = dlen > 0 ? q.readSlices(dlen, holds) : NO_DATA;
    const pad = padded - dlen;
    if (pad) q.skip(pad);
    if (dd) {
      const got = q.readUInt32LE(0);
      q.skip(DIGEST_LENGTH);
      const want = crc32c(data, pad);
      if (got !== want) {
        const copy = Buffer.from(bhs);
        releaseHolds(holds);
        throw new FramingError('data-digest', `data digest mismatch (0x${got.toString(16)} != 0x${want.toString(16)})`, copy);
      }
    }
    return { bhs, ahs, data, dataLength: dlen, holds };
  }
}

export function releaseHolds(holds: Retained[]): void {
  for (let i = 0; i < holds.length; i++) holds[i]!.release();
  holds.length = 0;
}

/** Done with a PDU: its views may be reused from now on. */
export function releasePdu(pdu: Pdu): void {
  releaseHolds(pdu.holds);
}

/**
 * The PDU with its bytes copied out of the receive arenas and its holds released, for
 * control PDUs whose handlers keep bytes across awaits or across PDUs (task management,
 * text, logout, NOP-Out): they are few and small, so the copy costs nothing that matters,
 * and no arena stays pinned by them. A PDU that holds nothing is returned as it is.
 */
export function detachPdu(pdu: Pdu): Pdu {
  if (pdu.holds.length === 0) return pdu;
  const copy: Pdu = {
    bhs: Buffer.from(pdu.bhs),
    ahs: pdu.ahs ? Buffer.from(pdu.ahs) : undefined,
    data: pdu.dataLength > 0 ? [Buffer.concat(pdu.data as Buffer[])] : [],
    dataLength: pdu.dataLength,
    holds: [],
  };
  releasePdu(pdu);
  return copy;
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
