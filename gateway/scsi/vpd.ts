import type { CommandContext } from './command.js';
import type { LogicalUnit } from './logical-unit.js';
import * as op from './opcodes.js';
import { provisioning } from './provisioning.js';

/** PERIPHERAL QUALIFIER 000b + direct access block device, or 011b/1Fh: no logical unit here. */
export function peripheralByte(lu: LogicalUnit | undefined): number {
  return lu ? 0x00 : 0x7f;
}

/** ASCII field, space padded (SPC-4 4.4.1). */
export function asciiField(buf: Buffer, offset: number, length: number, text: string): void {
  buf.fill(0x20, offset, offset + length);
  buf.write(text.slice(0, length), offset, 'ascii');
}

type Builder = (ctx: CommandContext<LogicalUnit | undefined>, lu: LogicalUnit | undefined) => Buffer;

/** VPD page with its 4-byte header; PAGE LENGTH from the body. */
function page(lu: LogicalUnit | undefined, code: number, body: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header[0] = peripheralByte(lu);
  header[1] = code;
  header.writeUInt16BE(body.length, 2);
  return Buffer.concat([header, body]);
}

/** Identification descriptor (SPC-4 7.8.6.1). */
function designator(codeSet: number, piv: boolean, association: number, type: number, value: Buffer): Buffer {
  const d = Buffer.alloc(4 + value.length);
  d[0] = (piv ? op.PROTOCOL_ID_ISCSI << 4 : 0) | codeSet;
  d[1] = (piv ? 0x80 : 0) | (association << 4) | type;
  d[3] = value.length;
  value.copy(d, 4);
  return d;
}

/** UTF-8 SCSI name string, NUL terminated and padded to a multiple of 4 (SPC-4 7.8.6.11). */
function nameString(name: string): Buffer {
  const bytes = Buffer.from(name, 'utf8');
  const out = Buffer.alloc((bytes.length + 4) & ~3);
  bytes.copy(out);
  return out;
}

const ASSOCIATION_LU = 0;
const ASSOCIATION_TARGET_PORT = 1;
const ASSOCIATION_TARGET_DEVICE = 2;
const TYPE_T10_VENDOR = 0x1;
const TYPE_NAA = 0x3;
const TYPE_RELATIVE_TARGET_PORT = 0x4;
const TYPE_TARGET_PORT_GROUP = 0x5;
const TYPE_SCSI_NAME_STRING = 0x8;
const CODE_SET_BINARY = 0x1;
const CODE_SET_ASCII = 0x2;
const CODE_SET_UTF8 = 0x3;

const PAGES: ReadonlyMap<number, Builder> = new Map<number, Builder>([
  [0x00, (_ctx, lu) => page(lu, 0x00, Buffer.from([...PAGES.keys()]))],
  [0x80, (_ctx, lu) => page(lu, 0x80, Buffer.from(lu?.serial ?? '', 'ascii'))],
  [
    0x83,
    (ctx, lu) => {
      const u16 = (n: number) => {
        const b = Buffer.alloc(4);
        b.writeUInt16BE(n, 2);
        return b;
      };
      const parts: Buffer[] = [];
      if (lu) {
        parts.push(designator(CODE_SET_BINARY, false, ASSOCIATION_LU, TYPE_NAA, lu.naa));
        const t10 = Buffer.alloc(8 + lu.serial.length);
        asciiField(t10, 0, 8, ctx.target.vendor);
        t10.write(lu.serial, 8, 'ascii');
        parts.push(designator(CODE_SET_ASCII, false, ASSOCIATION_LU, TYPE_T10_VENDOR, t10));
      }
      parts.push(
        designator(CODE_SET_BINARY, true, ASSOCIATION_TARGET_PORT, TYPE_RELATIVE_TARGET_PORT, u16(ctx.nexus.relativeTargetPortId)),
        designator(CODE_SET_BINARY, true, ASSOCIATION_TARGET_PORT, TYPE_TARGET_PORT_GROUP, u16(ctx.nexus.targetPortGroupId)),
        designator(CODE_SET_UTF8, true, ASSOCIATION_TARGET_DEVICE, TYPE_SCSI_NAME_STRING, nameString(ctx.target.targetName)),
      );
      return page(lu, 0x83, Buffer.concat(parts));
    },
  ],
  [
    0xb0,
    (_ctx, lu) => {
      // Block Limits (SBC-3 6.5.3)
      const b = Buffer.alloc(0x3c);
      if (!lu) return page(lu, 0xb0, b);
      const granularity = Math.max(1, Math.floor(lu.device.blockSizes.preferred / lu.blockSize));
      const p = provisioning(lu);
      // WSNZ stays 0: a WRITE SAME of zero blocks writes up to the last LBA.
      b[1] = MAX_COMPARE_AND_WRITE_BLOCKS;
      b.writeUInt16BE(Math.min(granularity, 0xffff), 2);
      b.writeUInt32BE(lu.maxTransferBlocks, 4);
      b.writeUInt32BE(Math.min(lu.maxTransferBlocks, Math.max(granularity, Math.floor(lu.chunkBytes / lu.blockSize))), 8);
      if (p.unmap) {
        b.writeUInt32BE(MAX_UNMAP_LBA_COUNT, 16);
        b.writeUInt32BE(MAX_UNMAP_DESCRIPTORS, 20);
        b.writeUInt32BE(granularity, 24);
      }
      b.writeBigUInt64BE(BigInt(maxWriteSameBlocks(lu)), 32);
      return page(lu, 0xb0, b);
    },
  ],
  [
    0xb1,
    (_ctx, lu) => {
      // Block Device Characteristics: MEDIUM ROTATION RATE 1 means solid state.
      const b = Buffer.alloc(0x3c);
      b.writeUInt16BE(lu?.device.capabilities.rotational ? 7200 : 1, 0);
      return page(lu, 0xb1, b);
    },
  ],
  [
    0xb2,
    (_ctx, lu) => {
      // Logical Block Provisioning (SBC-3 6.5.4)
      const b = Buffer.alloc(4);
      if (lu) {
        const p = provisioning(lu);
        b[1] = (p.unmap ? 0x80 : 0) | (p.writeSameUnmap ? 0x60 : 0) | (p.readsZero ? 0x04 : 0);
        b[2] = p.unmap ? 0x02 : 0x00; // PROVISIONING TYPE: thin
      }
      return page(lu, 0xb2, b);
    },
  ],
]);

export const MAX_COMPARE_AND_WRITE_BLOCKS = 255;
export const MAX_UNMAP_LBA_COUNT = 0xffffffff;
export const MAX_UNMAP_DESCRIPTORS = 256;

/** One WRITE SAME covers at most this many blocks: bounds the time one command holds its range. */
export function maxWriteSameBlocks(_lu: LogicalUnit): number {
  return 0xffff;
}

export function vpdPage(ctx: CommandContext<LogicalUnit | undefined>, code: number): Buffer | undefined {
  return PAGES.get(code)?.(ctx, ctx.lu);
}
