import { allocationLength, truncate, writeUint64 } from './cdb.js';
import type { CommandContext, CommandSpec } from './command.js';
import { contiguous, dataOut } from './io.js';
import { ALL_PAGES, MODE_PAGES, type ModePage, type PageControl } from './mode-pages.js';
import * as op from './opcodes.js';
import { GOOD, invalidFieldInCdb, invalidFieldInParameterList, parameterListLengthError, ScsiError } from './sense.js';
import type { ScsiResult } from './types.js';
import type { LogicalUnit } from './logical-unit.js';

const PAGE_CONTROLS: Array<PageControl | undefined> = ['current', 'changeable', 'default', undefined];

function blockDescriptor(lu: LogicalUnit, long: boolean): Buffer {
  if (long) {
    const d = Buffer.alloc(16);
    writeUint64(d, 0, lu.blockCount);
    d.writeUInt32BE(lu.blockSize, 12);
    return d;
  }
  const d = Buffer.alloc(8);
  d.writeUInt32BE(Math.min(lu.blockCount, 0xffffffff), 0);
  d.writeUIntBE(lu.blockSize, 5, 3);
  return d;
}

/** MODE SENSE(6)/(10) (SPC-4 6.11, 6.12). */
function modeSense(ctx: CommandContext): ScsiResult {
  const { cdb, lu } = ctx;
  const ten = cdb[0] === op.MODE_SENSE_10;
  const dbd = (cdb[1]! & 0x08) !== 0;
  const llbaa = ten && (cdb[1]! & 0x10) !== 0;
  const pc = PAGE_CONTROLS[cdb[2]! >> 6];
  const code = cdb[2]! & 0x3f;
  const subpage = cdb[3]!;
  const alloc = ten ? allocationLength(cdb, 7, 2) : allocationLength(cdb, 4, 1);
  if (!pc) throw new ScsiError(op.ILLEGAL_REQUEST, op.ASC_SAVING_PARAMETERS_NOT_SUPPORTED, { field: { inCdb: true, byte: 2, bit: 7 } });
  if (subpage !== 0 && subpage !== 0xff) throw invalidFieldInCdb(3);
  const pages = code === ALL_PAGES ? MODE_PAGES : MODE_PAGES.filter((p) => p.code === code);
  if (pages.length === 0) throw invalidFieldInCdb(2, 5);
  const descriptor = dbd ? Buffer.alloc(0) : blockDescriptor(lu, llbaa);
  const body = Buffer.concat(pages.map((p) => p.build(lu, pc)));
  // Device-specific parameter: WP, and DPOFUA since FUA is honoured.
  const deviceSpecific = (lu.readOnly ? 0x80 : 0) | 0x10;
  let header: Buffer;
  if (ten) {
    header = Buffer.alloc(8);
    header.writeUInt16BE(6 + descriptor.length + body.length, 0);
    header[3] = deviceSpecific;
    header[4] = llbaa && !dbd ? 0x01 : 0;
    header.writeUInt16BE(descriptor.length, 6);
  } else {
    header = Buffer.alloc(4);
    header[0] = 3 + descriptor.length + body.length;
    header[2] = deviceSpecific;
    header[3] = descriptor.length;
  }
  return { status: op.SAM_STAT_GOOD, dataIn: truncate(Buffer.concat([header, descriptor, body]), alloc) };
}

/** Checks a MODE SELECT page against the current and changeable values. */
function checkPage(lu: LogicalUnit, page: Buffer, at: number): ModePage {
  const code = page[0]! & 0x3f;
  if (page[0]! & 0x40) throw invalidFieldInParameterList(at, 6); // SPF: no subpages
  const spec = MODE_PAGES.find((p) => p.code === code);
  if (!spec) throw invalidFieldInParameterList(at, 5);
  if (page[1] !== spec.length) throw invalidFieldInParameterList(at + 1);
  const current = spec.build(lu, 'current');
  const changeable = spec.build(lu, 'changeable');
  for (let i = 2; i < current.length; i++) {
    if ((page[i]! ^ current[i]!) & ~changeable[i]!) throw invalidFieldInParameterList(at + i);
  }
  return spec;
}

/** MODE SELECT(6)/(10): validates the whole list first, then applies it. */
function modeSelect(ctx: CommandContext): ScsiResult {
  const { cdb, lu } = ctx;
  const ten = cdb[0] === op.MODE_SELECT_10;
  if (cdb[1]! & 0x01) throw invalidFieldInCdb(1, 0); // SP: pages cannot be saved
  const length = ten ? allocationLength(cdb, 7, 2) : allocationLength(cdb, 4, 1);
  if (length === 0) return GOOD;
  const list = contiguous(dataOut(ctx, length));
  const headerLength = ten ? 8 : 4;
  if (list.length < headerLength) throw parameterListLengthError();
  const descriptorLength = ten ? list.readUInt16BE(6) : list[3]!;
  const long = ten && (list[4]! & 0x01) !== 0;
  let at = headerLength;
  if (descriptorLength > 0) {
    const size = long ? 16 : 8;
    if (descriptorLength !== size) throw invalidFieldInParameterList(ten ? 6 : 3);
    if (at + size > list.length) throw parameterListLengthError();
    const blockLength = long ? list.readUInt32BE(at + 12) : list.readUIntBE(at + 5, 3);
    if (blockLength !== lu.blockSize) throw invalidFieldInParameterList(at + (long ? 12 : 5));
    at += size;
  }
  const changes: Array<[ModePage, Buffer]> = [];
  while (at < list.length) {
    if (at + 2 > list.length) throw parameterListLengthError();
    const end = at + 2 + list[at + 1]!;
    if (end > list.length) throw parameterListLengthError();
    const page = list.subarray(at, end);
    changes.push([checkPage(lu, page, at), page]);
    at = end;
  }
  let changed = false;
  for (const [spec, page] of changes) {
    const before = spec.build(lu, 'current');
    spec.apply?.(lu, page);
    changed ||= !before.equals(spec.build(lu, 'current'));
  }
  if (changed) ctx.target.unitAttentions.queueAll([lu.lun], op.ASC_MODE_PARAMETERS_CHANGED, ctx.nexusKey);
  return { status: op.SAM_STAT_GOOD, dataOutLength: length };
}

const common = { alua: 'standby' } as const;

export const MODE_COMMANDS: CommandSpec[] = [
  { ...common, name: 'MODE SENSE(6)', opcode: op.MODE_SENSE_6, usage: [0x1a, 0x08, 0xff, 0xff, 0xff, 0x04], reservation: 'read', run: modeSense },
  { ...common, name: 'MODE SENSE(10)', opcode: op.MODE_SENSE_10, usage: [0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0x04], reservation: 'read', run: modeSense },
  { ...common, name: 'MODE SELECT(6)', opcode: op.MODE_SELECT_6, usage: [0x15, 0x11, 0, 0, 0xff, 0x04], reservation: 'write', run: modeSelect },
  { ...common, name: 'MODE SELECT(10)', opcode: op.MODE_SELECT_10, usage: [0x55, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, 0x04], reservation: 'write', run: modeSelect },
];
