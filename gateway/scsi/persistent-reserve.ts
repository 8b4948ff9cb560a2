import { allocationLength, truncate, uint } from './cdb.js';
import type { CommandContext, CommandSpec } from './command.js';
import { contiguous, dataOut } from './io.js';
import * as op from './opcodes.js';
import { isHolderOf, type Registration } from './reservation-store.js';
import { allRegistrants } from './reservations.js';
import { invalidFieldInParameterList, parameterListLengthError } from './sense.js';
import type { ScsiResult } from './types.js';

const keyBytes = (hex: string) => Buffer.from(hex, 'hex');

function withHeader(generation: number, body: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(generation >>> 0, 0);
  h.writeUInt32BE(body.length, 4);
  return Buffer.concat([h, body]);
}

function readKeys(ctx: CommandContext): Buffer {
  const s = ctx.lu.pr.current;
  return withHeader(s.generation, Buffer.concat(s.registrations.map((r) => keyBytes(r.key))));
}

function readReservation(ctx: CommandContext): Buffer {
  const s = ctx.lu.pr.current;
  const r = s.reservation;
  if (!r) return withHeader(s.generation, Buffer.alloc(0));
  const d = Buffer.alloc(16);
  if (!allRegistrants(r.type)) {
    const holder = s.registrations.find((x) => isHolderOf(r.holder, x));
    if (holder) keyBytes(holder.key).copy(d, 0);
  }
  d[13] = (r.scope << 4) | r.type;
  return withHeader(s.generation, d);
}

function reportCapabilities(ctx: CommandContext): Buffer {
  const d = Buffer.alloc(8);
  d.writeUInt16BE(8, 0);
  d[2] = 0x10 | 0x04 | 0x01; // CRH, ATP_C, PTPL_C
  d[3] = 0x80 | (ctx.lu.pr.current.aptpl ? 0x01 : 0); // TMV, PTPL_A
  d[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02; // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
  d[5] = 0x01; // EX_AC_AR
  return d;
}

/** iSCSI TransportID, initiator port format: `name,i,0x<isid>` NUL padded (SPC-4 7.6.4.6). */
function transportId(r: Registration): Buffer {
  const name = Buffer.from(r.initiatorPort, 'utf8');
  const padded = Math.max(20, (name.length + 4) & ~3);
  const id = Buffer.alloc(4 + padded);
  id[0] = 0x40 | op.PROTOCOL_ID_ISCSI;
  id.writeUInt16BE(padded, 2);
  name.copy(id, 4);
  return id;
}

function readFullStatus(ctx: CommandContext): Buffer {
  const s = ctx.lu.pr.current;
  const r = s.reservation;
  const parts = s.registrations.map((reg) => {
    const tid = transportId(reg);
    const d = Buffer.alloc(24);
    keyBytes(reg.key).copy(d, 0);
    const holds = r !== undefined && (allRegistrants(r.type) || isHolderOf(r.holder, reg));
    d[12] = (reg.allTargetPorts ? 0x02 : 0) | (holds ? 0x01 : 0);
    if (holds) d[13] = (r.scope << 4) | r.type;
    d.writeUInt16BE(reg.allTargetPorts ? 0 : reg.relativeTargetPortId, 18);
    d.writeUInt32BE(tid.length, 20);
    return Buffer.concat([d, tid]);
  });
  return withHeader(s.generation, Buffer.concat(parts));
}

const READERS = [readKeys, readReservation, reportCapabilities, readFullStatus];

function persistentReserveIn(ctx: CommandContext): ScsiResult {
  const data = READERS[ctx.cdb[1]! & 0x1f]!(ctx);
  return { status: op.SAM_STAT_GOOD, dataIn: truncate(data, allocationLength(ctx.cdb, 7, 2)) };
}

const PARAMETER_LIST_LENGTH = 24;

async function persistentReserveOut(ctx: CommandContext): Promise<ScsiResult> {
  const { cdb, lu } = ctx;
  const length = uint(cdb, 5, 4);
  if (length !== PARAMETER_LIST_LENGTH) throw parameterListLengthError();
  const list = contiguous(dataOut(ctx, length));
  if (list[20]! & 0x08) throw invalidFieldInParameterList(20, 3); // SPEC_I_PT is not supported
  const serviceAction = cdb[1]! & 0x1f;
  const outcome = await lu.pr.out(ctx.nexus, {
    serviceAction,
    scope: cdb[2]! >> 4,
    type: cdb[2]! & 0x0f,
    key: list.subarray(0, 8).toString('hex'),
    serviceActionKey: list.subarray(8, 16).toString('hex'),
    allTargetPorts: (list[20]! & 0x04) !== 0,
    aptpl: (list[20]! & 0x01) !== 0,
  });
  // Every target mapping the device hears of it, through its own LUN number.
  lu.reservation.deliver(outcome);
  return { status: op.SAM_STAT_GOOD, dataOutLength: length };
}

const IN_USAGE = [0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, 0x04];
const OUT_USAGE = [0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x04];
const common = { reservation: 'none', alua: 'standby' } as const;

export const PERSISTENT_RESERVE_COMMANDS: CommandSpec[] = [
  ...['READ KEYS', 'READ RESERVATION', 'REPORT CAPABILITIES', 'READ FULL STATUS'].map(
    (name, sa): CommandSpec => ({
      ...common,
      name: `PERSISTENT RESERVE IN (${name})`,
      opcode: op.PERSISTENT_RESERVE_IN,
      serviceAction: sa,
      usage: IN_USAGE,
      run: persistentReserveIn,
    }),
  ),
  ...(
    [
      [op.PRO_REGISTER, 'REGISTER'],
      [op.PRO_RESERVE, 'RESERVE'],
      [op.PRO_RELEASE, 'RELEASE'],
      [op.PRO_CLEAR, 'CLEAR'],
      [op.PRO_PREEMPT, 'PREEMPT'],
      [op.PRO_PREEMPT_AND_ABORT, 'PREEMPT AND ABORT'],
      [op.PRO_REGISTER_AND_IGNORE_EXISTING_KEY, 'REGISTER AND IGNORE EXISTING KEY'],
    ] as const
  ).map(
    ([sa, name]): CommandSpec => ({
      ...common,
      name: `PERSISTENT RESERVE OUT (${name})`,
      opcode: op.PERSISTENT_RESERVE_OUT,
      serviceAction: sa,
      usage: OUT_USAGE,
      run: persistentReserveOut,
    }),
  ),
];
