import type { Retained } from '../../fabric/buffers.js';
import type { DataDirection } from '../scsi/types.js';

/** One outstanding R2T: the burst the initiator owes us for this Target Transfer Tag. */
export interface PendingR2T {
  readonly ttt: number;
  readonly offset: number;
  readonly length: number;
  received: number;
  nextDataSN: number;
}

/**
 * A SCSI command between its arrival and its response: collecting data-out (immediate,
 * unsolicited, then R2T bursts), then executing. Data-out stays as received slices.
 */
export interface Task {
  readonly itt: number;
  readonly lun: number;
  readonly cmdSN: number;
  readonly cdb: Buffer;
  readonly direction: DataDirection;
  /** Expected Data Transfer Length for data-out (write direction). */
  readonly writeLength: number;
  /** Expected length of data-in (read direction). */
  readonly readLength: number;
  /** Data-out as received: the first PDU's slice list is adopted as it is, not copied into a new array. */
  dataOut: Buffer[];
  /** Keep the receive arenas under the CDB and data-out from reuse until the task ends (the first PDU's list, adopted). */
  holds: Retained[];
  received: number;
  /** Bytes the initiator may send unsolicited (immediate + Data-Out with TTT 0xffffffff). */
  readonly unsolicitedLength: number;
  /** The unsolicited sequence ended (F bit seen or nothing unsolicited expected). */
  unsolicitedDone: boolean;
  nextUnsolicitedDataSN: number;
  /** Next offset an R2T will ask for. */
  nextR2TOffset: number;
  nextR2TSN: number;
  /** Outstanding R2Ts by TTT; made by the first R2T (most commands never need one: a Map costs ~200 bytes). */
  r2ts: Map<number, PendingR2T> | undefined;
  /** Write data reserved in the session's budget for R2Ts (0 until the first R2T). */
  dataOutReserved: number;
  /** Aborted by task management: no response may go out. */
  aborted: boolean;
  executing: boolean;
  /** Settles when the response has been sent (or the task dropped). */
  done?: Promise<void>;
}

/** Empty lists every task starts with until it adopts its first PDU's: never pushed to (see `adopt`). */
const NONE: never[] = [];

export function newTask(init: Pick<Task, 'itt' | 'lun' | 'cmdSN' | 'cdb' | 'direction' | 'writeLength' | 'readLength' | 'unsolicitedLength'>): Task {
  return {
    itt: init.itt,
    lun: init.lun,
    cmdSN: init.cmdSN,
    cdb: init.cdb,
    direction: init.direction,
    writeLength: init.writeLength,
    readLength: init.readLength,
    unsolicitedLength: init.unsolicitedLength,
    dataOut: NONE,
    holds: NONE,
    received: 0,
    unsolicitedDone: false,
    nextUnsolicitedDataSN: 0,
    nextR2TOffset: init.unsolicitedLength,
    nextR2TSN: 0,
    r2ts: undefined,
    dataOutReserved: 0,
    aborted: false,
    executing: false,
    done: undefined,
  };
}

/**
 * Adds a received PDU's data slices and holds to the task. The first non-empty lists are
 * taken over as they are (the PDU is done with them): a 4 KiB command then allocates no
 * array of its own; later PDUs' are appended.
 */
export function adopt(task: Task, data: Buffer[], holds: Retained[]): void {
  if (data.length > 0) {
    if (task.dataOut === NONE) task.dataOut = data;
    else for (let i = 0; i < data.length; i++) task.dataOut.push(data[i]!);
  }
  if (holds.length > 0) {
    if (task.holds === NONE) task.holds = holds;
    else for (let i = 0; i < holds.length; i++) task.holds.push(holds[i]!);
  }
}
