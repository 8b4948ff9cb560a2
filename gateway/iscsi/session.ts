import type { Nexus } from '../scsi/types.js';
import type { Task } from './task.js';
import type { SessionType } from './login.js';
import type { TargetRuntime } from './target-runtime.js';
import type { OperationalParams } from './negotiation.js';
import { SessionBudget } from './budget.js';
import { seqAdd, seqInWindow, seqLt } from './sequence.js';


/** A session's connection, as the session needs it: to close it and abort its tasks. */
export interface SessionConnection {
  readonly cid: number;
  close(reason: string): void;
  readonly commands: { abortTask(task: Task): void };
}

export type CmdSnVerdict = 'now' | 'queue' | 'drop';

/**
 * One iSCSI session (RFC 7143 §4.2.2): its initiator port (name + ISID), the TSIH we gave
 * it, the CmdSN window shared by its connections, and the tasks it has in flight.
 */
export class Session {
  expCmdSN: number;
  readonly connections = new Set<SessionConnection>();
  /** In-flight tasks by Initiator Task Tag. */
  readonly tasks = new Map<number, Task>();
  /** Commands that arrived ahead of ExpCmdSN (multi-connection ordering), by CmdSN. */
  private readonly early = new Map<number, () => void>();
  /** The command window and the data this session may make us hold. */
  readonly budget: SessionBudget;
  /** The highest MaxCmdSN told to the initiator: it never moves back (§4.2.2.1). */
  private advertisedMaxCmdSN: number;
  closed = false;

  constructor(
    readonly tsih: number,
    readonly isid: string,
    readonly initiatorName: string,
    readonly type: SessionType,
    /** Undefined for discovery sessions. */
    readonly target: TargetRuntime | undefined,
    readonly nexus: Nexus | undefined,
    readonly params: OperationalParams,
    firstCmdSN: number,
    queueDepth?: number,
  ) {
    this.expCmdSN = firstCmdSN >>> 0;
    this.budget = new SessionBudget(queueDepth);
    this.advertisedMaxCmdSN = seqAdd(this.expCmdSN, this.budget.queueDepth - 1);
  }

  /**
   * The window closes as commands arrive and opens as they are answered: ExpCmdSN moves on
   * receipt, MaxCmdSN only on completion. An initiator never learns of a smaller MaxCmdSN
   * than one it was given (it would ignore it), so the value only ever grows.
   */
  get maxCmdSN(): number {
    const open = seqAdd(this.expCmdSN, this.budget.queueDepth - 1 - this.budget.outstanding);
    if (seqLt(this.advertisedMaxCmdSN, open)) this.advertisedMaxCmdSN = open;
    return this.advertisedMaxCmdSN;
  }

  /** Where a non-immediate command with this CmdSN stands in the window (§4.2.2.1). */
  verdict(cmdSN: number): CmdSnVerdict {
    // A closed window (MaxCmdSN = ExpCmdSN - 1) takes nothing, not even ExpCmdSN itself.
    if (!seqInWindow(cmdSN, this.expCmdSN, this.maxCmdSN)) return 'drop';
    return cmdSN === this.expCmdSN ? 'now' : 'queue';
  }

  /** Accept the command at ExpCmdSN and run any queued successors that became due. */
  advance(): void {
    this.expCmdSN = seqAdd(this.expCmdSN, 1);
    let run = this.early.get(this.expCmdSN);
    while (run) {
      this.early.delete(this.expCmdSN);
      this.expCmdSN = seqAdd(this.expCmdSN, 1);
      run();
      run = this.early.get(this.expCmdSN);
    }
  }

  defer(cmdSN: number, run: () => void): void {
    if (!this.early.has(cmdSN)) this.early.set(cmdSN, run);
  }

  /**
   * TMF ABORT TASK for a task we do not have (RFC 7143 §11.5.1): whether its RefCmdSN lies
   * in the command window and before the TMF's own CmdSN, i.e. the command was not received
   * yet (rule b). A RefCmdSN below ExpCmdSN is a command already done with (rule c).
   */
  notYetReceived(refCmdSN: number, tmfCmdSN: number): boolean {
    return seqInWindow(refCmdSN, this.expCmdSN, this.maxCmdSN) && seqLt(refCmdSN, tmfCmdSN);
  }

  /**
   * Count a command that has not arrived as received (§11.5.1 rule b): the window moves
   * past it, and if it arrives after all (or waits queued behind a gap) it never runs.
   */
  consume(cmdSN: number): void {
    if (cmdSN === this.expCmdSN) this.advance();
    else this.early.set(cmdSN, () => undefined);
  }
}
