import { readBufferPool } from '../../fabric/buffers.js';
import { blockRange, cdbLengthOf } from './cdb.js';
import type { CommandContext, CommandSpec } from './command.js';
import { checkWritable, readBlocks, writeBlocks, writeDataOut } from './io.js';
import * as op from './opcodes.js';
import { GOOD, invalidFieldInCdb } from './sense.js';
import type { ScsiResult } from './types.js';

/** Byte of the TRANSFER LENGTH field, for the sense FIELD POINTER, by CDB length. */
const TRANSFER_LENGTH_BYTE: Record<number, number> = { 6: 4, 10: 7, 12: 6, 16: 10 };

/** Checks shared by every command that addresses a block range: protection, range, size. */
export function checkBlockRange(ctx: CommandContext, lba: number, blocks: number): void {
  const length = cdbLengthOf(ctx.cdb[0]!);
  // RDPROTECT / WRPROTECT / VRPROTECT: we keep no protection information.
  if (length > 6 && ctx.cdb[1]! & 0xe0) throw invalidFieldInCdb(1, 7);
  ctx.lu.checkRange(lba, blocks);
  if (blocks > ctx.lu.maxTransferBlocks) throw invalidFieldInCdb(TRANSFER_LENGTH_BYTE[length]!, 7);
}

/**
 * The device fills a pooled buffer that the transport sends as it is, then gives back.
 * Not an async function: every READ runs this, and a promise chain of its own costs less
 * than an async frame.
 */
function read(ctx: CommandContext): Promise<ScsiResult> | ScsiResult {
  const { lba, blocks } = blockRange(ctx.cdb);
  checkBlockRange(ctx, lba, blocks);
  if (blocks === 0) return GOOD;
  // Only what the initiator will take is read and held: a READ whose Expected Data Transfer
  // Length is shorter than its transfer must not make the target buffer the whole transfer.
  // The transport still reports the difference as an overflow residual.
  const size = ctx.lu.blockSize;
  const wanted = Math.min(blocks, Math.ceil(ctx.cmd.expectedDataInLength / size));
  if (wanted === 0) return { status: op.SAM_STAT_GOOD, dataInLength: blocks * size };
  const buffer = readBufferPool.acquire(wanted * size);
  const release = (): void => readBufferPool.release(buffer);
  let pending: Promise<Buffer>;
  try {
    pending = readBlocks(ctx, lba, wanted, buffer);
  } catch (err) {
    release();
    throw err;
  }
  return pending.then(
    (): ScsiResult => ({ status: op.SAM_STAT_GOOD, dataIn: buffer, dataInLength: blocks * size, release }),
    (err: unknown) => {
      release();
      throw err;
    },
  );
}

async function write(ctx: CommandContext): Promise<ScsiResult> {
  const { lba, blocks, fua } = blockRange(ctx.cdb);
  const bytes = blocks * ctx.lu.blockSize;
  checkBlockRange(ctx, lba, blocks);
  checkWritable(ctx.lu);
  const received = writeDataOut(ctx, blocks);
  // Overlapping writes need no lock between them; the device's range lock keeps each one
  // out of ranges held by COMPARE AND WRITE and the like.
  if (received.blocks > 0) await writeBlocks(ctx, lba, received.data, fua);
  return { status: op.SAM_STAT_GOOD, dataOutLength: bytes };
}

const common = { alua: 'active', ignoresUnitAttention: false } as const;

export const READ_WRITE_COMMANDS: CommandSpec[] = [
  { ...common, name: 'READ(6)', opcode: op.READ_6, usage: [0x08, 0x1f, 0xff, 0xff, 0xff, 0x04], reservation: 'read', io: 'read', run: read },
  { ...common, name: 'READ(10)', opcode: op.READ_10, usage: [0x28, 0xf8, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x04], reservation: 'read', io: 'read', run: read },
  { ...common, name: 'READ(12)', opcode: op.READ_12, usage: [0xa8, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x04], reservation: 'read', io: 'read', run: read },
  { ...common, name: 'READ(16)', opcode: op.READ_16, usage: [0x88, 0xf8, ...Array(12).fill(0xff), 0x00, 0x04], reservation: 'read', io: 'read', run: read },
  { ...common, name: 'WRITE(6)', opcode: op.WRITE_6, usage: [0x0a, 0x1f, 0xff, 0xff, 0xff, 0x04], reservation: 'write', io: 'write', run: write },
  { ...common, name: 'WRITE(10)', opcode: op.WRITE_10, usage: [0x2a, 0xf8, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x04], reservation: 'write', io: 'write', run: write },
  { ...common, name: 'WRITE(12)', opcode: op.WRITE_12, usage: [0xaa, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x04], reservation: 'write', io: 'write', run: write },
  { ...common, name: 'WRITE(16)', opcode: op.WRITE_16, usage: [0x8a, 0xf8, ...Array(12).fill(0xff), 0x00, 0x04], reservation: 'write', io: 'write', run: write },
];
