import { logger } from '../../fabric/log.js';
import type { AluaState, AccessState } from './alua.js';
import { cdbLengthOf, checkControl, serviceAction } from './cdb.js';
import { CommandTable, type AluaAllowance, type CommandContext, type CommandSpec, type TargetContext } from './command.js';
import { ALL_COMMANDS } from './commands.js';
import { LogicalUnit, type LunConfig } from './logical-unit.js';
import * as op from './opcodes.js';
import type { Asc } from './opcodes.js';
import { initiatorPortOf } from './reservations.js';
import type { DeviceReservations } from './device-reservations.js';
import { fixedSense, invalidFieldInCdb, invalidOpcode, notReady, reservationConflict, ScsiError, toScsiError } from './sense.js';
import type { Nexus, ScsiCommand, ScsiResult } from './types.js';
import { UnitAttentions } from './unit-attention.js';

export interface ScsiTargetOptions {
  readonly targetName: string;
  readonly luns: ReadonlyMap<number, LunConfig>;
  readonly alua: AluaState;
  /** Reservations per device, shared with the other targets and front ends of the member. */
  readonly reservations: DeviceReservations;
  /**
   * LUN masking: the LUNs an initiator may see (REPORT LUNS lists only them; any other is
   * LOGICAL UNIT NOT SUPPORTED to it). Undefined, or undefined for a nexus: every LUN.
   */
  readonly lunMask?: (nexus: Nexus) => ReadonlySet<number> | undefined;
  /** INQUIRY T10 VENDOR IDENTIFICATION (8 chars) and PRODUCT IDENTIFICATION (16 chars). */
  readonly vendor?: string;
  readonly product?: string;
  readonly revision?: string;
}

interface Task {
  readonly nexusKey: string;
  readonly lun: number;
  readonly abort: TaskAbort;
}

/**
 * Each nexus' initiator port name, built once: building it (two template strings and a
 * lower-casing) for every command, then hashing the new string, was a measurable share
 * of a 4 KiB command's allocation. A Nexus is immutable, so its name never changes.
 */
const portNames = new WeakMap<Nexus, string>();
function nexusKeyOf(nexus: Nexus): string {
  let key = portNames.get(nexus);
  if (key === undefined) portNames.set(nexus, (key = initiatorPortOf(nexus)));
  return key;
}

/**
 * A task's abort state, seen by commands as an AbortSignal. Commands mostly just test
 * `aborted`, and an AbortController costs microseconds per command on Node 20 (a
 * noticeable share of a 4 KiB read), so the real one is made only when someone listens.
 */
class TaskAbort {
  aborted = false;
  reason: unknown = undefined;
  onabort: ((this: AbortSignal, ev: Event) => unknown) | null = null;
  private controller: AbortController | null = null;

  /** What commands see: shaped like an AbortSignal, as Node's own APIs check for. */
  get signal(): AbortSignal {
    return this as unknown as AbortSignal;
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = new DOMException('This operation was aborted', 'AbortError');
    this.controller?.abort(this.reason);
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: AddEventListenerOptions | boolean): void {
    this.real().addEventListener(type, listener, options);
  }

  removeEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: EventListenerOptions | boolean): void {
    this.controller?.signal.removeEventListener(type, listener, options);
  }

  dispatchEvent(event: Event): boolean {
    return this.real().dispatchEvent(event);
  }

  private real(): AbortSignal {
    if (!this.controller) {
      const controller = (this.controller = new AbortController());
      controller.signal.onabort = (ev) => this.onabort?.call(controller.signal, ev);
      if (this.aborted) controller.abort(this.reason);
    }
    return this.controller.signal;
  }
}

/** How far each state lets commands through, from most to least accessible. */
const ALUA_RANK: Record<AluaAllowance, number> = { active: 0, standby: 1, unavailable: 2, transitioning: 3 };
const STATE_NEEDS: Record<AccessState, { rank: number; asc: Asc }> = {
  'active/optimized': { rank: 0, asc: op.ASC_NO_ADDITIONAL_SENSE },
  'active/non-optimized': { rank: 0, asc: op.ASC_NO_ADDITIONAL_SENSE },
  standby: { rank: 1, asc: op.ASC_LOGICAL_UNIT_NOT_ACCESSIBLE_STANDBY },
  unavailable: { rank: 2, asc: op.ASC_LOGICAL_UNIT_NOT_ACCESSIBLE_UNAVAILABLE },
  transitioning: { rank: 3, asc: op.ASC_LOGICAL_UNIT_NOT_ACCESSIBLE_TRANSITION },
};

const log = logger('scsi');

/**
 * A SCSI target device (SAM-5): its logical units, unit attentions, reservations and task
 * set. Transport independent: the iSCSI layer hands it whole commands.
 */
export class ScsiTarget implements TargetContext {
  readonly targetName: string;
  readonly vendor: string;
  readonly product: string;
  readonly revision: string;
  readonly alua: AluaState;
  readonly commands = new CommandTable(ALL_COMMANDS);
  readonly unitAttentions = new UnitAttentions();
  private readonly units = new Map<number, LogicalUnit>();
  /** Each unit's tie to its device's reservations (unit attentions, aborts), undone on removal. */
  private readonly unmap = new Map<number, () => void>();
  /** Running tasks by nexus, then by task tag (no key string built per command). */
  private readonly tasks = new Map<string, Map<number, Task>>();
  private readonly reservations: DeviceReservations;
  private readonly lunMask: ((nexus: Nexus) => ReadonlySet<number> | undefined) | undefined;
  private readonly onAluaChange = () =>
    this.unitAttentions.queueAll(this.lunNumbers(), op.ASC_ASYMMETRIC_ACCESS_STATE_CHANGED);

  constructor(options: ScsiTargetOptions) {
    this.targetName = options.targetName;
    this.vendor = options.vendor ?? 'BLOCKGAT';
    this.product = options.product ?? 'blockgate';
    this.revision = options.revision ?? '0001';
    this.alua = options.alua;
    this.reservations = options.reservations;
    this.lunMask = options.lunMask;
    for (const [lun, config] of options.luns) this.mapUnit(lun, config);
    this.alua.on('change', this.onAluaChange);
  }

  private mapUnit(lun: number, config: LunConfig): void {
    this.unmap.get(lun)?.();
    const lu = new LogicalUnit(lun, this.targetName, config, this.reservations);
    this.units.set(lun, lu);
    this.unmap.set(lun, lu.reservation.map(this, lun));
  }

  lunNumbers(): number[] {
    return [...this.units.keys()].sort((a, b) => a - b);
  }

  logicalUnit(lun: number): LogicalUnit | undefined {
    return this.units.get(lun);
  }

  /** The LUNs this nexus may see (all of them without LUN masking). */
  lunsVisibleTo(nexus: Nexus): number[] {
    const mask = this.lunMask?.(nexus);
    const all = this.lunNumbers();
    return mask ? all.filter((lun) => mask.has(lun)) : all;
  }

  /** The logical unit at `lun` as this nexus sees it: none when masked from it. */
  unitFor(nexus: Nexus, lun: number): LogicalUnit | undefined {
    const mask = this.lunMask?.(nexus);
    return mask && !mask.has(lun) ? undefined : this.units.get(lun);
  }

  /** Adds a LUN at run time; every nexus is told REPORTED LUNS DATA HAS CHANGED. */
  addLun(lun: number, config: LunConfig): void {
    this.mapUnit(lun, config);
    this.unitAttentions.queueAll(this.lunNumbers(), op.ASC_REPORTED_LUNS_DATA_HAS_CHANGED);
  }

  removeLun(lun: number): void {
    if (!this.units.delete(lun)) return;
    this.unmap.get(lun)?.();
    this.unmap.delete(lun);
    this.abortWhere((t) => t.lun === lun);
    this.unitAttentions.dropLun(lun);
    this.unitAttentions.queueAll(this.lunNumbers(), op.ASC_REPORTED_LUNS_DATA_HAS_CHANGED);
  }

  async execute(cmd: ScsiCommand): Promise<ScsiResult> {
    const nexusKey = nexusKeyOf(cmd.nexus);
    this.unitAttentions.see(nexusKey);
    const abort = new TaskAbort();
    const signal = cmd.signal;
    const onAbort = signal ? () => abort.abort() : undefined;
    if (signal) {
      signal.addEventListener('abort', onAbort!, { once: true });
      if (signal.aborted) abort.abort();
    }
    let byTag = this.tasks.get(nexusKey);
    if (!byTag) this.tasks.set(nexusKey, (byTag = new Map()));
    const task: Task = { nexusKey, lun: cmd.lun, abort };
    byTag.set(cmd.taskTag, task);
    try {
      const result = await this.dispatch(cmd, nexusKey, abort.signal);
      if (!abort.aborted) return result;
      result.release?.();
      return { status: op.SAM_STAT_TASK_ABORTED };
    } finally {
      if (signal) signal.removeEventListener('abort', onAbort!);
      if (byTag.get(cmd.taskTag) === task) byTag.delete(cmd.taskTag);
    }
  }

  /**
   * Finds and runs the command. Not an async function: the checks run synchronously and
   * only a command that returns a promise gets a rejection handler, so a command costs
   * one async frame (execute's), not two.
   */
  private dispatch(cmd: ScsiCommand, nexusKey: string, signal: AbortSignal): Promise<ScsiResult> | ScsiResult {
    const opcode = cmd.cdb[0];
    if (opcode === undefined) return invalidOpcode().toResult();
    const lu = this.unitFor(cmd.nexus, cmd.lun);
    const hasActions = this.commands.hasServiceActions(opcode);
    const length = cdbLengthOf(opcode);
    const spec =
      cmd.cdb.length >= length && length > 0
        ? this.commands.find(opcode, hasActions ? serviceAction(cmd.cdb) : undefined)
        : undefined;
    if (!spec) {
      if (!lu && opcode !== op.INQUIRY && opcode !== op.REQUEST_SENSE && opcode !== op.REPORT_LUNS) return luNotSupported();
      return (hasActions ? invalidFieldInCdb(1, 4) : invalidOpcode()).toResult();
    }
    if (!lu && !spec.anyLun) return luNotSupported();
    const cdb = cmd.cdb.subarray(0, length);
    const ctx: CommandContext<LogicalUnit | undefined> = { cmd, cdb, lu, nexus: cmd.nexus, nexusKey, target: this, signal };
    let outcome: Promise<ScsiResult> | ScsiResult;
    try {
      checkControl(cdb);
      if (lu) this.admit(spec, lu, cmd.nexus, nexusKey);
      outcome = (spec.run as (c: typeof ctx) => Promise<ScsiResult> | ScsiResult)(ctx);
    } catch (err) {
      return failedResult(err, spec, cmd.lun);
    }
    return outcome instanceof Promise ? outcome.then(undefined, (err: unknown) => failedResult(err, spec, cmd.lun)) : outcome;
  }

  /** Unit attention, ALUA access and reservation checks, in SAM-5 order. */
  private admit(spec: CommandSpec, lu: LogicalUnit, nexus: Nexus, nexusKey: string): void {
    if (!spec.ignoresUnitAttention) {
      const ua = this.unitAttentions.take(nexusKey, lu.lun);
      if (ua) throw new ScsiError(op.UNIT_ATTENTION, ua);
    }
    const access = STATE_NEEDS[this.alua.stateFor(nexus.targetPortGroupId, nexus.relativeTargetPortId)];
    if (access.rank > ALUA_RANK[spec.alua]) throw notReady(access.asc);
    if (!spec.ignoresSpc2Reservation && lu.reservation.spc2HeldByOther(nexusKey, this.targetName)) {
      throw reservationConflict();
    }
    if (lu.pr.conflicts(nexus, spec.reservation)) throw reservationConflict();
  }

  /** Why a port cannot serve media commands right now (for REQUEST SENSE and TEST UNIT READY). */
  accessProblem(nexus: Nexus): Asc | undefined {
    const access = STATE_NEEDS[this.alua.stateFor(nexus.targetPortGroupId, nexus.relativeTargetPortId)];
    return access.rank > 0 ? access.asc : undefined;
  }

  abortTask(nexus: Nexus, taskTag: number): boolean {
    const task = this.tasks.get(nexusKeyOf(nexus))?.get(taskTag);
    if (!task) return false;
    task.abort.abort();
    return true;
  }

  abortTaskSet(nexus: Nexus, lun: number): void {
    const key = nexusKeyOf(nexus);
    this.abortWhere((t) => t.nexusKey === key && t.lun === lun);
  }

  abortTasksOf(lun: number, nexusKeys: ReadonlySet<string>): void {
    this.abortWhere((t) => t.lun === lun && nexusKeys.has(t.nexusKey));
  }

  /** LOGICAL UNIT RESET: aborts its tasks, drops RESERVE(6)/(10) (not persistent reservations). */
  lunReset(lun: number): void {
    const lu = this.units.get(lun);
    if (!lu) return;
    this.abortWhere((t) => t.lun === lun);
    lu.reservation.clearSpc2();
    this.unitAttentions.queueAll([lun], op.ASC_BUS_DEVICE_RESET_FUNCTION_OCCURRED);
    log.info({ target: this.targetName, lun }, 'logical unit reset');
  }

  targetReset(): void {
    this.abortWhere(() => true);
    for (const lu of this.units.values()) lu.reservation.clearSpc2();
    this.unitAttentions.queueAll(this.lunNumbers(), op.ASC_POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED);
    log.info({ target: this.targetName }, 'target reset');
  }

  /**
   * The transport lost an I_T nexus (session closed or dropped): its tasks are aborted and
   * its RESERVE(6)/(10) reservations released (SPC-2 5.5.1); persistent ones stay.
   */
  nexusLost(nexus: Nexus): void {
    const key = nexusKeyOf(nexus);
    this.abortWhere((t) => t.nexusKey === key);
    this.tasks.delete(key);
    for (const lu of this.units.values()) lu.reservation.releaseSpc2(key, this.targetName);
    this.unitAttentions.forget(key);
  }

  /** Detaches from the ALUA state (several targets may share it). */
  close(): void {
    this.alua.off('change', this.onAluaChange);
    this.abortWhere(() => true);
    for (const undo of this.unmap.values()) undo();
    this.unmap.clear();
  }

  private abortWhere(predicate: (t: Task) => boolean): void {
    for (const byTag of this.tasks.values()) {
      for (const [tag, task] of byTag) {
        if (predicate(task)) {
          task.abort.abort();
          byTag.delete(tag);
        }
      }
    }
  }
}

/** A command's failure as its sense; one the SCSI layer did not expect is logged. */
function failedResult(err: unknown, spec: CommandSpec, lun: number): ScsiResult {
  const scsi = toScsiError(err, spec.io ?? 'other');
  if (!(err instanceof ScsiError) && scsi.senseKey === op.HARDWARE_ERROR) {
    log.error({ err, opcode: spec.opcode, lun }, 'SCSI command failed unexpectedly');
  }
  return scsi.toResult();
}

function luNotSupported(): ScsiResult {
  return {
    status: op.SAM_STAT_CHECK_CONDITION,
    sense: fixedSense(op.ILLEGAL_REQUEST, op.ASC_LOGICAL_UNIT_NOT_SUPPORTED),
  };
}
