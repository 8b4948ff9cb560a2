import type { AluaState } from './alua.js';
import type { LogicalUnit } from './logical-unit.js';
import type { UnitAttentions } from './unit-attention.js';
import type { Asc } from './opcodes.js';
import type { IoKind } from './sense.js';
import type { Nexus, ReservationAccess, ScsiCommand, ScsiResult } from './types.js';

/** What a command may reach of the target besides its logical unit. */
export interface TargetContext {
  readonly targetName: string;
  readonly vendor: string;
  readonly product: string;
  readonly revision: string;
  readonly alua: AluaState;
  readonly commands: CommandTable;
  readonly unitAttentions: UnitAttentions;
  lunNumbers(): number[];
  /** The LUNs this nexus may see (LUN masking). */
  lunsVisibleTo(nexus: Nexus): number[];
  /** Why media commands through this nexus' port cannot run now (ALUA state), if so. */
  accessProblem(nexus: Nexus): Asc | undefined;
  /** Aborts every task of these nexuses on a LUN (PREEMPT AND ABORT). */
  abortTasksOf(lun: number, nexusKeys: ReadonlySet<string>): void;
}

export interface CommandContext<L extends LogicalUnit | undefined = LogicalUnit> {
  readonly cmd: ScsiCommand;
  /** The CDB cut to the operation code's length. */
  readonly cdb: Buffer;
  readonly lu: L;
  readonly nexus: Nexus;
  readonly nexusKey: string;
  readonly target: TargetContext;
  /** Aborted by task management or a reset: stop between device calls. */
  readonly signal: AbortSignal;
}

/**
 * How a command meets a persistent reservation held by another I_T nexus (SPC-4 table 66,
 * SBC-3 table 13): 'none' is always allowed, 'read' conflicts with the exclusive-access
 * types, 'write' with every type.
 */

/**
 * The least accessible ALUA state in which the command still runs (SPC-4 5.16.2.4):
 * 'active' runs only on active ports; 'standby' also in standby; 'unavailable' also in
 * unavailable; 'transitioning' anywhere.
 */
export type AluaAllowance = 'active' | 'standby' | 'unavailable' | 'transitioning';

interface CommandSpecBase {
  readonly name: string;
  readonly opcode: number;
  readonly serviceAction?: number;
  /**
   * CDB USAGE DATA for REPORT SUPPORTED OPERATION CODES: for each CDB byte, the bits the
   * device server looks at (byte 0 is the operation code itself).
   */
  readonly usage: readonly number[];
  readonly reservation: ReservationAccess;
  /** How a BlockError escaping `run` maps to sense (EIO: read error or write error). */
  readonly io?: IoKind;
  readonly alua: AluaAllowance;
  /** Runs despite a pending unit attention and without consuming it (SAM-5 5.14). */
  readonly ignoresUnitAttention?: boolean;
  /** Runs despite a RESERVE(6)/(10) held by another nexus. */
  readonly ignoresSpc2Reservation?: boolean;
}

export type CommandSpec =
  | (CommandSpecBase & { readonly anyLun?: false; run(ctx: CommandContext): Promise<ScsiResult> | ScsiResult })
  | (CommandSpecBase & {
      /** Also answers for a LUN that does not exist (INQUIRY, REPORT LUNS, REQUEST SENSE). */
      readonly anyLun: true;
      run(ctx: CommandContext<LogicalUnit | undefined>): Promise<ScsiResult> | ScsiResult;
    });

/** Every supported command, by operation code and service action. */
export class CommandTable {
  private readonly byOpcode = new Map<number, CommandSpec | Map<number, CommandSpec>>();
  readonly all: readonly CommandSpec[];

  constructor(specs: readonly CommandSpec[]) {
    this.all = [...specs].sort((a, b) => a.opcode - b.opcode || (a.serviceAction ?? 0) - (b.serviceAction ?? 0));
    for (const spec of this.all) {
      if (spec.serviceAction === undefined) this.byOpcode.set(spec.opcode, spec);
      else {
        let actions = this.byOpcode.get(spec.opcode);
        if (!(actions instanceof Map)) this.byOpcode.set(spec.opcode, (actions = new Map()));
        actions.set(spec.serviceAction, spec);
      }
    }
  }

  /** Whether the operation code has service actions; undefined when unsupported. */
  hasServiceActions(opcode: number): boolean | undefined {
    const entry = this.byOpcode.get(opcode);
    return entry === undefined ? undefined : entry instanceof Map;
  }

  find(opcode: number, serviceAction: number | undefined): CommandSpec | undefined {
    const entry = this.byOpcode.get(opcode);
    if (entry instanceof Map) return serviceAction === undefined ? undefined : entry.get(serviceAction);
    return entry;
  }
}
