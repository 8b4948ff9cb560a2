import { logger } from '../../fabric/log.js';
import type { DataDirection, ScsiCommand, ScsiResult } from '../scsi/types.js';
import { AhsType, CommandFlag, FINAL_BIT, Opcode, RESERVED_TAG, RejectReason, ResponseFlag, SamStatus, ScsiResponseCode } from './constants.js';
import type { ConnectionLink } from './connection-link.js';
import { encodeLun, isFinal, isImmediate, itt, lunOf, newBhs, releaseHolds, releasePdu, sliceData, type Pdu } from './pdu.js';
import { adopt, newTask, type Task } from './task.js';
import { fixedSense } from '../scsi/sense.js';
import { MAX_TRANSFER_BYTES } from '../scsi/logical-unit.js';
import * as op from '../scsi/opcodes.js';

const log = logger('iscsi');

/** Tags of recently aborted tasks, so their late Data-Out is dropped quietly. */
const ABORTED_MEMORY = 64;

/**
 * The SCSI command path of one connection (RFC 7143 §11.3–11.8): SCSI Command with immediate
 * data, unsolicited and R2T-solicited Data-Out gathered as slices, execution by the target's
 * SCSI layer, then Data-In (status in the last one when there is no sense) or SCSI Response,
 * with exact residuals.
 */
export class CommandPath {
  private nextTtt = 1;
  private readonly recentlyAborted: number[] = [];
  /** Writes waiting for room in the session's write budget before their first R2T, oldest first. */
  private readonly awaitingR2T: Task[] = [];

  constructor(private readonly conn: ConnectionLink) {}

  /** Takes over the PDU: its holds go to the task, or are released when there is none. */
  onCommand(pdu: Pdu): void {
    if (!this.startTask(pdu)) releasePdu(pdu);
  }

  /** Returns whether a task now owns the PDU's bytes. */
  private startTask(pdu: Pdu): boolean {
    const conn = this.conn;
    const session = conn.session!;
    const b = pdu.bhs;
    const tag = itt(b);
    if (session.tasks.has(tag)) {
      conn.reject(b, RejectReason.TASK_IN_PROGRESS);
      return false;
    }
    const read = (b[1]! & CommandFlag.READ) !== 0;
    const write = (b[1]! & CommandFlag.WRITE) !== 0;
    const edtl = b.readUInt32BE(20);
    const cdb = commandDescriptorBlock(b, pdu.ahs);
    if (!cdb) {
      conn.reject(b, RejectReason.INVALID_PDU_FIELD);
      return false;
    }
    const direction: DataDirection = read && write ? 'bidirectional' : read ? 'read' : write ? 'write' : 'none';
    const readLength = read ? (write ? bidiReadLength(pdu.ahs) ?? edtl : edtl) : 0;
    const writeLength = write ? edtl : 0;
    const p = conn.params;
    const immediate = pdu.dataLength;
    const final = isFinal(b);
    if (
      (immediate > 0 && (!write || !p.immediateData)) ||
      immediate > writeLength ||
      immediate > p.firstBurstLength ||
      (!final && (!write || p.initialR2T))
    ) {
      conn.reject(b, RejectReason.PROTOCOL_ERROR);
      return false;
    }
    // Refused before anything is buffered: no command writes more than the Block Limits VPD
    // page advertises. Unsolicited data that still follows is dropped.
    if (writeLength > MAX_TRANSFER_BYTES) {
      this.refuse(tag, b, cdb, SamStatus.CHECK_CONDITION, fixedSense(op.ILLEGAL_REQUEST, op.ASC_INVALID_FIELD_IN_CDB));
      return false;
    }
    // An immediate command skips the CmdSN window, so it is held to the queue depth here.
    if (isImmediate(b) && session.budget.full) {
      this.refuse(tag, b, cdb, op.SAM_STAT_TASK_SET_FULL, undefined);
      return false;
    }
    const unsolicitedLength = final ? immediate : Math.min(writeLength, p.firstBurstLength);
    const task = newTask({ itt: tag, lun: lunOf(b), cmdSN: b.readUInt32BE(24), cdb, direction, writeLength, readLength, unsolicitedLength });
    task.unsolicitedDone = final || unsolicitedLength === immediate;
    // The task takes over the PDU's lists (the PDU is not used again).
    adopt(task, pdu.data as Buffer[], pdu.holds);
    task.received = immediate;
    session.tasks.set(tag, task);
    session.budget.admit(dataInCharge(task));
    this.progress(task);
    return true;
  }

  /** Answer a command without running it (no task is created, no window slot taken). */
  private refuse(tag: number, bhs: Buffer, cdb: Buffer, status: number, sense: Buffer | undefined): void {
    this.forget(tag);
    const refused = newTask({ itt: tag, lun: lunOf(bhs), cmdSN: 0, cdb, direction: 'none', writeLength: 0, readLength: 0, unsolicitedLength: 0 });
    this.sendResponse(refused, status, sense, 0, 0);
  }

  /** The task left the session (answered or aborted): its window slot and data budget are free. */
  private release(task: Task): void {
    const session = this.conn.session;
    if (session?.tasks.get(task.itt) !== task) return;
    session.tasks.delete(task.itt);
    session.budget.finish(dataInCharge(task), task.dataOutReserved);
    task.dataOutReserved = 0;
  }

  /** Takes over the PDU: its holds go to the task it belongs to, or are released. */
  onDataOut(pdu: Pdu): void {
    const conn = this.conn;
    const b = pdu.bhs;
    const tag = itt(b);
    const task = conn.session!.tasks.get(tag);
    if (!task) {
      if (!this.recentlyAborted.includes(tag)) conn.reject(b, RejectReason.INVALID_PDU_FIELD);
      return releasePdu(pdu);
    }
    const ttt = b.readUInt32BE(20);
    const dataSN = b.readUInt32BE(36);
    const offset = b.readUInt32BE(40);
    const n = pdu.dataLength;
    const violation = this.checkDataOut(task, ttt, dataSN, offset, n, isFinal(b));
    if (violation) {
      // ERL 0 cannot recover a broken data sequence: reject and drop the connection.
      log.debug({ itt: tag, violation }, 'data-out sequence error');
      conn.reject(b, RejectReason.PROTOCOL_ERROR);
      releasePdu(pdu);
      return conn.close(`data-out sequence error: ${violation}`);
    }
    adopt(task, pdu.data as Buffer[], pdu.holds);
    task.received += n;
    this.progress(task);
  }

  private checkDataOut(task: Task, ttt: number, dataSN: number, offset: number, n: number, final: boolean): string | undefined {
    if (task.executing) return 'data after the transfer completed';
    if (offset !== task.received) return `buffer offset ${offset}, expected ${task.received}`;
    if (ttt === RESERVED_TAG) {
      if (task.unsolicitedDone) return 'unsolicited data not allowed';
      if (dataSN !== task.nextUnsolicitedDataSN) return `DataSN ${dataSN}, expected ${task.nextUnsolicitedDataSN}`;
      if (task.received + n > task.unsolicitedLength) return 'more unsolicited data than FirstBurstLength';
      task.nextUnsolicitedDataSN++;
      if (final || task.received + n === task.unsolicitedLength) task.unsolicitedDone = true;
      if (final && task.received + n !== task.unsolicitedLength && task.received + n !== task.writeLength) {
        // An initiator may end its unsolicited burst early: solicit the rest from here.
        task.nextR2TOffset = task.received + n;
      }
      return undefined;
    }
    const r2t = task.r2ts?.get(ttt);
    if (!r2t) return `unknown target transfer tag 0x${ttt.toString(16)}`;
    if (dataSN !== r2t.nextDataSN) return `DataSN ${dataSN}, expected ${r2t.nextDataSN}`;
    if (offset !== r2t.offset + r2t.received) return `buffer offset ${offset} outside the R2T`;
    if (r2t.received + n > r2t.length) return 'more data than the R2T asked for';
    r2t.nextDataSN++;
    r2t.received += n;
    if (r2t.received === r2t.length) task.r2ts!.delete(ttt);
    else if (final) return 'burst ended before the R2T length';
    return undefined;
  }

  /** Ask for more data, or execute once all of it is here. */
  private progress(task: Task): void {
    if (task.received === task.writeLength) return this.execute(task);
    if (!task.unsolicitedDone) return;
    if (task.dataOutReserved === 0 && task.nextR2TOffset < task.writeLength) {
      // Everything still to solicit is reserved at once, so a write that got its first R2T
      // always completes; the others wait without holding more than their unsolicited data.
      const rest = task.writeLength - task.nextR2TOffset;
      if (this.awaitingR2T.length > 0 || !this.conn.session!.budget.reserveDataOut(rest)) {
        if (!this.awaitingR2T.includes(task)) this.awaitingR2T.push(task);
        return;
      }
      task.dataOutReserved = rest;
    }
    const p = this.conn.params;
    const r2ts = [];
    const outstanding = (task.r2ts ??= new Map());
    while (outstanding.size < p.maxOutstandingR2T && task.nextR2TOffset < task.writeLength) {
      const length = Math.min(p.maxBurstLength, task.writeLength - task.nextR2TOffset);
      const ttt = this.allocateTtt();
      outstanding.set(ttt, { ttt, offset: task.nextR2TOffset, length, received: 0, nextDataSN: 0 });
      const bhs = newBhs(Opcode.R2T, FINAL_BIT);
      encodeLun(task.lun, bhs);
      bhs.writeUInt32BE(task.itt, 16);
      bhs.writeUInt32BE(ttt, 20);
      this.conn.fillCounters(bhs, false);
      bhs.writeUInt32BE(task.nextR2TSN++, 36);
      bhs.writeUInt32BE(task.nextR2TOffset, 40);
      bhs.writeUInt32BE(length, 44);
      r2ts.push({ bhs });
      task.nextR2TOffset += length;
    }
    if (r2ts.length) this.conn.sendPdus(r2ts);
  }

  /** Room freed in the write budget: the oldest waiting writes get their R2Ts. */
  resumeWrites(): void {
    const session = this.conn.session;
    while (session && this.awaitingR2T.length > 0) {
      const task = this.awaitingR2T[0]!;
      if (task.aborted || session.tasks.get(task.itt) !== task) {
        this.awaitingR2T.shift();
        continue;
      }
      const rest = task.writeLength - task.nextR2TOffset;
      if (!session.budget.reserveDataOut(rest)) return;
      this.awaitingR2T.shift();
      task.dataOutReserved = rest;
      this.progress(task);
    }
  }

  private allocateTtt(): number {
    const t = this.nextTtt;
    this.nextTtt = this.nextTtt >= 0x7fffffff ? 1 : this.nextTtt + 1;
    return t;
  }

  private execute(task: Task): void {
    const session = this.conn.session!;
    task.executing = true;
    const cmd: ScsiCommand = {
      nexus: session.nexus!,
      lun: task.lun,
      cdb: task.cdb,
      direction: task.direction,
      expectedDataInLength: task.readLength,
      dataOut: task.writeLength > 0 ? task.dataOut : undefined,
      taskTag: task.itt,
    };
    let pending: Promise<ScsiResult>;
    try {
      pending = session.target!.scsi.execute(cmd);
    } catch (err) {
      pending = Promise.reject(err);
    }
    // One reaction for both outcomes (not then().catch(): a second promise and closure per command).
    task.done = pending.then(
      (result) => this.respondSafely(task, result),
      (err: unknown) => {
        log.warn({ err, itt: task.itt }, 'SCSI layer failed a command');
        this.respondSafely(task, undefined);
      },
    );
  }

  /** respond(), where a bug while answering costs this connection, never the process. */
  private respondSafely(task: Task, result: ScsiResult | undefined): void {
    try {
      this.respond(task, result);
    } catch (err) {
      log.error({ err, itt: task.itt }, 'failed to send a command response');
      this.conn.close('internal error');
    }
  }

  /** The SCSI layer is done with the command (its data-out too): answer it, unless aborted. */
  private respond(task: Task, result: ScsiResult | undefined): void {
    releaseHolds(task.holds);
    try {
      this.answer(task, result);
    } finally {
      this.release(task);
    }
  }

  private answer(task: Task, result: ScsiResult | undefined): void {
    const conn = this.conn;
    // Aborted by task management, or inside the SCSI layer (e.g. PREEMPT AND ABORT from
    // another nexus): no response.
    if (task.aborted || conn.closed || result?.status === SamStatus.TASK_ABORTED) return result?.release?.();
    if (!result) return this.sendResponse(task, SamStatus.CHECK_CONDITION, undefined, 0, 0, ScsiResponseCode.TARGET_FAILURE);
    const data = result.dataIn === undefined ? [] : Buffer.isBuffer(result.dataIn) ? [result.dataIn] : result.dataIn;
    let available = 0;
    for (const d of data) available += d.length;
    // The SCSI layer may produce only what the EDTL lets through and say how much the CDB asked for.
    const total = result.dataInLength ?? available;

    let flags = 0;
    let residual = 0;
    let dataInLength = 0;
    if (task.readLength > 0 || task.direction === 'read' || task.direction === 'bidirectional') {
      dataInLength = Math.min(total, task.readLength, available);
      if (total > task.readLength) [flags, residual] = [ResponseFlag.OVERFLOW, total - task.readLength];
      else if (total < task.readLength) [flags, residual] = [ResponseFlag.UNDERFLOW, task.readLength - total];
    } else if (result.dataOutLength !== undefined) {
      // Writes: the CDB's data-out length against the initiator's EDTL (0 included).
      const wanted = result.dataOutLength;
      if (wanted < task.writeLength) [flags, residual] = [ResponseFlag.UNDERFLOW, task.writeLength - wanted];
      else if (wanted > task.writeLength) [flags, residual] = [ResponseFlag.OVERFLOW, wanted - task.writeLength];
    }
    if (dataInLength === 0) {
      result.release?.();
      return this.sendResponse(task, result.status, result.sense, flags, residual);
    }

    const statusInData = !result.sense && result.status !== SamStatus.CHECK_CONDITION;
    const segment = conn.params.initiatorMaxRecvDataSegmentLength;
    const burst = conn.params.maxBurstLength;
    const pdus: { bhs: Buffer; data?: readonly Buffer[]; length?: number }[] = [];
    let dataSN = 0;
    for (let offset = 0; offset < dataInLength; ) {
      const burstEnd = Math.min(dataInLength, (Math.floor(offset / burst) + 1) * burst);
      const n = Math.min(segment, burstEnd - offset);
      const last = offset + n === dataInLength;
      const bhs = newBhs(Opcode.SCSI_DATA_IN, offset + n === burstEnd ? FINAL_BIT : 0);
      bhs.writeUInt32BE(task.itt, 16);
      bhs.writeUInt32BE(RESERVED_TAG, 20);
      if (last && statusInData) {
        bhs[1] = FINAL_BIT | ResponseFlag.STATUS | flags;
        bhs[3] = result.status;
        conn.fillCounters(bhs, true);
        bhs.writeUInt32BE(residual, 44);
      } else {
        conn.fillCounters(bhs, false);
        bhs.writeUInt32BE(0, 24);
      }
      bhs.writeUInt32BE(dataSN++, 36);
      bhs.writeUInt32BE(offset, 40);
      // The usual READ fits one PDU: its data list goes as it is, no new list or view.
      pdus.push({ bhs, data: n === available && offset === 0 ? data : sliceData(data, n, offset), length: n });
      offset += n;
    }
    if (!statusInData) pdus.push(this.responsePdu(task, result.status, result.sense, flags, residual, ScsiResponseCode.COMMAND_COMPLETED, dataSN));
    conn.sendPdus(pdus, result.release);
  }

  private sendResponse(task: Task, status: number, sense: Buffer | undefined, flags: number, residual: number, response: number = ScsiResponseCode.COMMAND_COMPLETED): void {
    this.conn.sendPdus([this.responsePdu(task, status, sense, flags, residual, response, task.nextR2TSN)]);
  }

  private responsePdu(task: Task, status: number, sense: Buffer | undefined, flags: number, residual: number, response: number, expDataSN: number) {
    const bhs = newBhs(Opcode.SCSI_RESPONSE, FINAL_BIT | flags);
    bhs[2] = response;
    bhs[3] = response === ScsiResponseCode.COMMAND_COMPLETED ? status : 0;
    bhs.writeUInt32BE(task.itt, 16);
    this.conn.fillCounters(bhs, true);
    bhs.writeUInt32BE(expDataSN, 36);
    bhs.writeUInt32BE(residual, 44);
    if (!sense || sense.length === 0) return { bhs };
    const len = Buffer.from([sense.length >> 8, sense.length & 0xff]);
    return { bhs, data: [len, sense], length: sense.length + 2 };
  }

  /** Task management aborted this task: no response may follow (SAM-5 §7.1). */
  abortTask(task: Task): void {
    // The SCSI layer stops the command itself through abortTask/abortTaskSet/lunReset.
    task.aborted = true;
    // A task still collecting data-out lets go of it now; one executing, once the SCSI layer is done.
    if (!task.executing) releaseHolds(task.holds);
    this.release(task);
    this.forget(task.itt);
  }

  private forget(tag: number): void {
    this.recentlyAborted.push(tag);
    if (this.recentlyAborted.length > ABORTED_MEMORY) this.recentlyAborted.shift();
  }

  abortAll(): void {
    const session = this.conn.session;
    if (!session) return;
    for (const task of [...session.tasks.values()]) this.abortTask(task);
  }

  /** Resolves when every command in flight has been answered. */
  async settle(): Promise<void> {
    const session = this.conn.session;
    if (!session) return;
    await Promise.allSettled([...session.tasks.values()].map((t) => t.done ?? Promise.resolve()));
  }
}

/** Read data a task may make us hold: the SCSI layer produces no more than the EDTL, nor than a transfer can be. */
const dataInCharge = (task: Task): number => Math.min(task.readLength, MAX_TRANSFER_BYTES);

/** The CDB: 16 bytes of the BHS, extended by an Extended CDB AHS for longer ones (§11.3.5). */
function commandDescriptorBlock(bhs: Buffer, ahs: Buffer | undefined): Buffer | undefined {
  const base = bhs.subarray(32, 48);
  if (!ahs) return base;
  for (let at = 0; at + 4 <= ahs.length; ) {
    const len = ahs.readUInt16BE(at);
    const type = ahs[at + 2]!;
    if (at + 3 + len > ahs.length) return undefined;
    if (type === AhsType.EXTENDED_CDB) return Buffer.concat([base, ahs.subarray(at + 4, at + 3 + len)]);
    at += 4 * Math.ceil((3 + len) / 4);
  }
  return base;
}

function bidiReadLength(ahs: Buffer | undefined): number | undefined {
  if (!ahs) return undefined;
  for (let at = 0; at + 4 <= ahs.length; ) {
    const len = ahs.readUInt16BE(at);
    if (ahs[at + 2] === AhsType.BIDI_READ_DATA_LENGTH && len === 5 && at + 8 <= ahs.length) return ahs.readUInt32BE(at + 4);
    at += 4 * Math.ceil((3 + len) / 4);
  }
  return undefined;
}
