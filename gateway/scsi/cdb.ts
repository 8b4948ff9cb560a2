import * as op from './opcodes.js';
import { invalidFieldInCdb } from './sense.js';

/** CDB length implied by the operation code's group (SPC-4 4.2.5.1). */
export function cdbLengthOf(opcode: number): number {
  switch (opcode >> 5) {
    case 0:
      return 6;
    case 1:
    case 2:
      return 10;
    case 4:
      return 16;
    case 5:
      return 12;
    default:
      return 0;
  }
}

/** Big-endian unsigned field of 1–8 bytes; values past 2^53 saturate (they are out of range anyway). */
export function uint(buf: Buffer, offset: number, length: number): number {
  if (length <= 6) return buf.readUIntBE(offset, length);
  // Two 32-bit halves, not a BigInt: READ(16)/WRITE(16) parse this on every command.
  const high = length === 8 ? buf.readUInt32BE(offset) : buf.readUIntBE(offset, length - 4);
  if (high >= 2 ** 21) return Number.MAX_SAFE_INTEGER;
  return Math.min(high * 2 ** 32 + buf.readUInt32BE(offset + length - 4), Number.MAX_SAFE_INTEGER);
}

export function writeUint64(buf: Buffer, offset: number, value: number): void {
  buf.writeBigUInt64BE(BigInt(value), offset);
}

/** The LBA, transfer length and cache flags of the READ/WRITE/VERIFY families. */
export interface BlockRange {
  readonly lba: number;
  readonly blocks: number;
  readonly fua: boolean;
}

export function blockRange(cdb: Buffer): BlockRange {
  const fua = (cdb[1]! & 0x08) !== 0;
  switch (cdbLengthOf(cdb[0]!)) {
    case 6: {
      const blocks = cdb[4]!;
      // READ(6)/WRITE(6): a TRANSFER LENGTH of zero means 256 blocks (SBC-3 5.15).
      return { lba: uint(cdb, 1, 3) & 0x1fffff, blocks: blocks === 0 ? 256 : blocks, fua: false };
    }
    case 10:
      return { lba: uint(cdb, 2, 4), blocks: uint(cdb, 7, 2), fua };
    case 12:
      return { lba: uint(cdb, 2, 4), blocks: uint(cdb, 6, 4), fua };
    default:
      return { lba: uint(cdb, 2, 8), blocks: uint(cdb, 10, 4), fua };
  }
}

/**
 * CDB USAGE DATA of a 10/12/16-byte command laid out like READ: flags in byte 1 (`flags`
 * names the bits looked at), then LBA and transfer length all used, GROUP NUMBER ignored,
 * and the CONTROL byte's NACA bit.
 */
export function blockCdbUsage(opcode: number, flags: number): number[] {
  const fields = { 10: [0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff], 12: Array(8).fill(0xff), 16: Array(12).fill(0xff) };
  const length = cdbLengthOf(opcode) as keyof typeof fields;
  return [opcode, flags, ...fields[length], ...(length === 10 ? [] : [0x00]), 0x04];
}

/** Allocation length fields sit at different offsets per command; callers name them. */
export function allocationLength(cdb: Buffer, offset: number, length: number): number {
  return uint(cdb, offset, length);
}

/** Data-in no longer than the CDB's ALLOCATION LENGTH (SPC-4 4.2.5.6). */
export function truncate(data: Buffer, allocation: number): Buffer {
  return data.length > allocation ? data.subarray(0, allocation) : data;
}

/** Rejects a set NACA bit in the CONTROL byte (we do not support ACA); `cdb` is cut to its length. */
export function checkControl(cdb: Buffer): void {
  const control = cdb.length - 1;
  if (cdb[control]! & 0x04) throw invalidFieldInCdb(control, 2);
}

/** Service action of MAINTENANCE IN/OUT, SERVICE ACTION IN and PERSISTENT RESERVE commands. */
export function serviceAction(cdb: Buffer): number | undefined {
  switch (cdb[0]) {
    case op.SERVICE_ACTION_IN_16:
    case op.MAINTENANCE_IN:
    case op.MAINTENANCE_OUT:
    case op.PERSISTENT_RESERVE_IN:
    case op.PERSISTENT_RESERVE_OUT:
      return cdb[1]! & 0x1f;
    default:
      return undefined;
  }
}
