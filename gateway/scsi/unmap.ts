import { totalLength } from '../../fabric/device.js';
import { allocationLength, uint } from './cdb.js';
import type { CommandContext, CommandSpec } from './command.js';
import { checkWritable, contiguous, dataOut } from './io.js';
import * as op from './opcodes.js';
import { deallocate, provisioning } from './provisioning.js';
import { GOOD, invalidFieldInCdb, invalidFieldInParameterList, invalidOpcode, lbaOutOfRange, parameterListLengthError, toScsiError } from './sense.js';
import type { ScsiResult } from './types.js';
import { MAX_UNMAP_DESCRIPTORS, MAX_UNMAP_LBA_COUNT } from './vpd.js';

const HEADER = 8;
const DESCRIPTOR = 16;

interface Extent {
  readonly lba: number;
  readonly blocks: number;
}

/** Parses and validates the whole parameter list before unmapping anything (SBC-3 5.28). */
function parse(ctx: CommandContext, list: Buffer): Extent[] {
  if (list.length < HEADER) throw parameterListLengthError();
  const dataLength = list.readUInt16BE(0);
  const descriptorLength = list.readUInt16BE(2);
  if (dataLength < 6 || dataLength + 2 > list.length) throw invalidFieldInParameterList(0);
  if (descriptorLength + HEADER > list.length) throw invalidFieldInParameterList(2);
  // A trailing partial descriptor is ignored.
  const count = Math.floor(descriptorLength / DESCRIPTOR);
  if (count > MAX_UNMAP_DESCRIPTORS) throw invalidFieldInParameterList(2);
  const extents: Extent[] = [];
  for (let i = 0; i < count; i++) {
    const at = HEADER + i * DESCRIPTOR;
    const lba = uint(list, at, 8);
    const blocks = list.readUInt32BE(at + 8);
    if (lba + blocks > ctx.lu.blockCount) throw lbaOutOfRange(lba);
    if (blocks > MAX_UNMAP_LBA_COUNT) throw invalidFieldInParameterList(at + 8);
    if (blocks > 0) extents.push({ lba, blocks });
  }
  return extents;
}

async function unmap(ctx: CommandContext): Promise<ScsiResult> {
  const { cdb, lu } = ctx;
  if (!provisioning(lu).unmap) {
    if (lu.readOnly) checkWritable(lu);
    throw invalidOpcode();
  }
  if (cdb[1]! & 0x01) throw invalidFieldInCdb(1, 0); // ANCHOR: no anchored state
  checkWritable(lu);
  const length = allocationLength(cdb, 7, 2);
  if (length === 0) return GOOD;
  const list = contiguous(dataOut(ctx, Math.min(length, totalLength(ctx.cmd.dataOut ?? []))));
  const extents = parse(ctx, list);
  for (const e of extents) {
    try {
      await deallocate(lu, e.lba * lu.blockSize, e.blocks * lu.blockSize);
    } catch (err) {
      throw toScsiError(err, 'write', e.lba);
    }
  }
  return { status: op.SAM_STAT_GOOD, dataOutLength: length };
}

export const UNMAP_COMMANDS: CommandSpec[] = [
  {
    name: 'UNMAP',
    opcode: op.UNMAP,
    usage: [0x42, 0x01, 0, 0, 0, 0, 0x00, 0xff, 0xff, 0x04],
    reservation: 'write',
    alua: 'active',
    io: 'write',
    run: unmap,
  },
];
