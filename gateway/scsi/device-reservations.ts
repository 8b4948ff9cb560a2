import * as op from './opcodes.js';
import type { Asc } from './opcodes.js';
import { exclusiveAccess, PersistentReservations, type ProutOutcome } from './reservations.js';
import { MemoryReservationStore, type ReservationStore } from './reservation-store.js';

/**
 * Reservations belong to the device, not to a target (as LIO keeps them per backstore): the
 * same device mapped as a LUN of two targets has one reservation state, so a reservation
 * taken through one target holds through the other, and front ends whose clients cannot
 * take part in SCSI reservations (NBD) are refused what a reservation forbids them.
 */

/** What a reservation needs of a target that maps its device: its unit attentions and task aborts. */
export interface ReservationPort {
  readonly targetName: string;
  readonly unitAttentions: { queue(nexusKey: string, lun: number, asc: Asc): void };
  abortTasksOf(lun: number, nexusKeys: ReadonlySet<string>): void;
}

interface MappedUnit {
  readonly target: ReservationPort;
  readonly lun: number;
}

/** Name of each persistent reservation type, for the messages NBD clients get. */
const TYPE_NAMES: Readonly<Record<number, string>> = {
  [op.PR_TYPE_WRITE_EXCLUSIVE]: 'Write Exclusive',
  [op.PR_TYPE_EXCLUSIVE_ACCESS]: 'Exclusive Access',
  [op.PR_TYPE_WRITE_EXCLUSIVE_REGISTRANTS_ONLY]: 'Write Exclusive - Registrants Only',
  [op.PR_TYPE_EXCLUSIVE_ACCESS_REGISTRANTS_ONLY]: 'Exclusive Access - Registrants Only',
  [op.PR_TYPE_WRITE_EXCLUSIVE_ALL_REGISTRANTS]: 'Write Exclusive - All Registrants',
  [op.PR_TYPE_EXCLUSIVE_ACCESS_ALL_REGISTRANTS]: 'Exclusive Access - All Registrants',
};

/** One device's reservations: persistent (SPC-4) and RESERVE(6)/(10) (SPC-2), and the LUNs mapping it. */
export class DeviceReservation {
  readonly pr: PersistentReservations;
  /** RESERVE(6)/(10) holder: its initiator port and the target it came through. */
  private spc2: { readonly nexusKey: string; readonly targetName: string } | undefined;
  private readonly units = new Set<MappedUnit>();

  constructor(
    readonly deviceName: string,
    store: ReservationStore,
    legacy?: { readonly key: string; readonly targetName: string },
  ) {
    this.pr = new PersistentReservations(`device/${deviceName}`, store, legacy);
  }

  /** A LUN of a target maps the device: it hears of reservation changes. Returns the unmapping. */
  map(target: ReservationPort, lun: number): () => void {
    const unit = { target, lun };
    this.units.add(unit);
    return () => this.units.delete(unit);
  }

  /** Unit attentions and PREEMPT AND ABORT aborts go to every target mapping the device, by its LUN number. */
  deliver(outcome: ProutOutcome): void {
    for (const { target, lun } of this.units) {
      const here = (a: { readonly targetName: string | undefined }) => a.targetName === undefined || a.targetName === target.targetName;
      for (const ua of outcome.unitAttentions) if (here(ua)) target.unitAttentions.queue(ua.nexusKey, lun, ua.asc);
      const abort = new Set(outcome.abort.filter(here).map((a) => a.nexusKey));
      if (abort.size > 0) target.abortTasksOf(lun, abort);
    }
  }

  // ---- RESERVE(6)/(10) ----

  get spc2Reserved(): boolean {
    return this.spc2 !== undefined;
  }

  spc2HeldByOther(nexusKey: string, targetName: string): boolean {
    return this.spc2 !== undefined && !(this.spc2.nexusKey === nexusKey && this.spc2.targetName === targetName);
  }

  reserveSpc2(nexusKey: string, targetName: string): void {
    this.spc2 = { nexusKey, targetName };
  }

  /** RELEASE by the holder ends it; by anyone else, nothing happens. */
  releaseSpc2(nexusKey: string, targetName: string): void {
    if (!this.spc2HeldByOther(nexusKey, targetName)) this.spc2 = undefined;
  }

  /** Reset (of the LU or its target): RESERVE(6)/(10) reservations do not survive it. */
  clearSpc2(): void {
    this.spc2 = undefined;
  }

  // ---- clients outside SCSI ----

  /**
   * Why a client that cannot register (an NBD client) may not read or write now, if so. Such
   * a client is never a registrant nor a holder: every persistent reservation type denies it
   * writes, the exclusive-access types reads too (SPC-4 table 66), and RESERVE(6)/(10)
   * denies it both.
   */
  refusal(access: 'read' | 'write'): string | undefined {
    if (this.spc2) return `device ${this.deviceName} is reserved by a SCSI RESERVE from ${this.spc2.nexusKey}`;
    const r = this.pr.reservation;
    if (!r || (access === 'read' && !exclusiveAccess(r.type))) return undefined;
    return `device ${this.deviceName} is held by a SCSI persistent reservation (${TYPE_NAMES[r.type] ?? `type ${r.type}`})`;
  }
}

/** Every device's reservations on this member; iSCSI targets and the NBD front end share one. */
export class DeviceReservations {
  private readonly devices = new Map<string, DeviceReservation>();

  constructor(private readonly store: ReservationStore = new MemoryReservationStore()) {}

  /**
   * The reservations of a device, made on first use. `legacy` names where a LUN kept its
   * state before reservations were per device (read once, if the device has none).
   */
  of(deviceName: string, legacy?: { readonly key: string; readonly targetName: string }): DeviceReservation {
    let r = this.devices.get(deviceName);
    if (!r) this.devices.set(deviceName, (r = new DeviceReservation(deviceName, this.store, legacy)));
    return r;
  }

  /** Only devices some LUN has mapped can hold a reservation. */
  peek(deviceName: string): DeviceReservation | undefined {
    return this.devices.get(deviceName);
  }
}
