import * as op from './opcodes.js';
import type { Asc } from './opcodes.js';
import {
  EMPTY_RESERVATION_STATE,
  fromTargetRecord,
  isHolderOf,
  type PersistentReservation,
  type Registration,
  type ReservationState,
  type ReservationStore,
} from './reservation-store.js';
import { invalidFieldInCdb, invalidFieldInParameterList, reservationConflict, ScsiError } from './sense.js';
import type { Nexus, ReservationAccess } from './types.js';

/** The key unit attentions and registrations use for an I_T nexus' initiator port. */
export function initiatorPortOf(nexus: Nexus): string {
  return `${nexus.initiatorName},i,0x${nexus.isid.toLowerCase()}`;
}

export const VALID_TYPES = new Set([
  op.PR_TYPE_WRITE_EXCLUSIVE,
  op.PR_TYPE_EXCLUSIVE_ACCESS,
  op.PR_TYPE_WRITE_EXCLUSIVE_REGISTRANTS_ONLY,
  op.PR_TYPE_EXCLUSIVE_ACCESS_REGISTRANTS_ONLY,
  op.PR_TYPE_WRITE_EXCLUSIVE_ALL_REGISTRANTS,
  op.PR_TYPE_EXCLUSIVE_ACCESS_ALL_REGISTRANTS,
]);

export const allRegistrants = (type: number) =>
  type === op.PR_TYPE_WRITE_EXCLUSIVE_ALL_REGISTRANTS || type === op.PR_TYPE_EXCLUSIVE_ACCESS_ALL_REGISTRANTS;
const registrantsOnly = (type: number) =>
  type === op.PR_TYPE_WRITE_EXCLUSIVE_REGISTRANTS_ONLY || type === op.PR_TYPE_EXCLUSIVE_ACCESS_REGISTRANTS_ONLY;
export const exclusiveAccess = (type: number): boolean =>
  type === op.PR_TYPE_EXCLUSIVE_ACCESS ||
  type === op.PR_TYPE_EXCLUSIVE_ACCESS_REGISTRANTS_ONLY ||
  type === op.PR_TYPE_EXCLUSIVE_ACCESS_ALL_REGISTRANTS;

export interface ProutParameters {
  readonly serviceAction: number;
  readonly scope: number;
  readonly type: number;
  /** RESERVATION KEY and SERVICE ACTION RESERVATION KEY as 16 hex digits. */
  readonly key: string;
  readonly serviceActionKey: string;
  readonly allTargetPorts: boolean;
  readonly aptpl: boolean;
}

/**
 * An I_T nexus a PERSISTENT RESERVE OUT affects: its initiator port (the unit attention
 * key) and the target it is registered through (any target of the device when undefined:
 * an ALL_TG_PT registration).
 */
export interface AffectedNexus {
  readonly nexusKey: string;
  readonly targetName: string | undefined;
}

/** Side effects of a PERSISTENT RESERVE OUT on other nexuses, on every target mapping the device. */
export interface ProutOutcome {
  readonly unitAttentions: ReadonlyArray<AffectedNexus & { readonly asc: Asc }>;
  /** Nexuses whose tasks PREEMPT AND ABORT aborts. */
  readonly abort: readonly AffectedNexus[];
}

/** Whether a registration is the one of this I_T nexus (or covers it: ALL_TG_PT). */
function registers(r: Registration, port: string, nexus: Nexus): boolean {
  return r.initiatorPort === port && (r.allTargetPorts || (r.relativeTargetPortId === nexus.relativeTargetPortId && r.targetName === nexus.targetName));
}

const affected = (r: Registration): AffectedNexus => ({ nexusKey: r.initiatorPort, targetName: r.allTargetPorts ? undefined : r.targetName });

const ZERO_KEY = '0000000000000000';

interface Draft {
  generation: number;
  aptpl: boolean;
  registrations: Registration[];
  reservation?: PersistentReservation;
}

/**
 * SPC-4 persistent reservations of one device, whichever LUN of whichever target maps it
 * (as LIO keeps them per backstore). PERSISTENT RESERVE OUT commands run one at a time;
 * each computes a new state, stores it, and only then makes it current. State persists
 * through a restart only with APTPL, as SPC-4 5.13.5 prescribes.
 */
export class PersistentReservations {
  private state: ReservationState | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly key: string,
    private readonly store: ReservationStore,
    /** Where the state was kept when it was per target and LUN, read if the device has none yet. */
    private readonly legacy?: { readonly key: string; readonly targetName: string },
  ) {}

  get current(): ReservationState {
    if (!this.state) {
      let loaded = this.store.load(this.key);
      if (!loaded && this.legacy) {
        const old = this.store.load(this.legacy.key);
        if (old) loaded = fromTargetRecord(old, this.legacy.targetName);
      }
      this.state = loaded?.aptpl ? loaded : EMPTY_RESERVATION_STATE;
    }
    return this.state;
  }

  /** Any persistent reservation is held (by whatever nexus). */
  get reservation(): PersistentReservation | undefined {
    return this.current.reservation;
  }

  registrationOf(nexus: Nexus): Registration | undefined {
    const port = initiatorPortOf(nexus);
    return this.current.registrations.find((r) => registers(r, port, nexus));
  }

  isHolder(nexus: Nexus): boolean {
    const r = this.current.reservation;
    const reg = this.registrationOf(nexus);
    if (!r || !reg) return false;
    return allRegistrants(r.type) || isHolderOf(r.holder, reg);
  }

  /** Whether the command must end in RESERVATION CONFLICT (SPC-4 table 66). */
  conflicts(nexus: Nexus, access: ReservationAccess): boolean {
    const r = this.current.reservation;
    if (!r || access === 'none' || this.isHolder(nexus)) return false;
    if (registrantsOnly(r.type) || allRegistrants(r.type)) {
      if (this.registrationOf(nexus)) return false;
    }
    return access === 'write' || exclusiveAccess(r.type);
  }

  hasRegistrations(): boolean {
    return this.current.registrations.length > 0;
  }

  /** Runs one PERSISTENT RESERVE OUT service action. */
  out(nexus: Nexus, p: ProutParameters): Promise<ProutOutcome> {
    const run = this.queue.then(async () => {
      const draft: Draft = { ...this.current, registrations: [...this.current.registrations] };
      const outcome = this.apply(draft, nexus, p);
      if (outcome.changed) {
        const next: ReservationState = { ...draft };
        await this.store.save(this.key, next);
        this.state = next;
      }
      return outcome;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private apply(d: Draft, nexus: Nexus, p: ProutParameters): ProutOutcome & { changed: boolean } {
    const port = initiatorPortOf(nexus);
    const regIndex = d.registrations.findIndex((r) => registers(r, port, nexus));
    const reg = d.registrations[regIndex];
    const uas: Array<AffectedNexus & { asc: Asc }> = [];
    const abort: AffectedNexus[] = [];
    const done = (changed: boolean) => ({ unitAttentions: uas, abort, changed });
    const holderIs = (r: Registration) =>
      d.reservation !== undefined && (allRegistrants(d.reservation.type) || isHolderOf(d.reservation.holder, r));
    const notifyOthers = (asc: Asc, except: ReadonlySet<Registration> = new Set()) => {
      for (const r of d.registrations) if (r !== reg && !except.has(r)) uas.push({ ...affected(r), asc });
    };

    if (p.serviceAction === op.PRO_REGISTER || p.serviceAction === op.PRO_REGISTER_AND_IGNORE_EXISTING_KEY) {
      const ignore = p.serviceAction === op.PRO_REGISTER_AND_IGNORE_EXISTING_KEY;
      if (!reg) {
        if (!ignore && p.key !== ZERO_KEY) throw reservationConflict();
        if (p.serviceActionKey === ZERO_KEY) return done(false);
        d.registrations.push({
          initiatorPort: port,
          targetName: nexus.targetName,
          relativeTargetPortId: nexus.relativeTargetPortId,
          allTargetPorts: p.allTargetPorts,
          key: p.serviceActionKey,
        });
      } else {
        if (!ignore && p.key !== reg.key) throw reservationConflict();
        if (p.serviceActionKey === ZERO_KEY) {
          const wasHolder = holderIs(reg);
          d.registrations.splice(regIndex, 1);
          if (wasHolder && d.reservation) {
            const type = d.reservation.type;
            if (!allRegistrants(type) || d.registrations.length === 0) {
              d.reservation = undefined;
              if (registrantsOnly(type)) notifyOthers(op.ASC_RESERVATIONS_RELEASED);
            }
          }
        } else {
          d.registrations[regIndex] = { ...reg, key: p.serviceActionKey };
        }
      }
      d.aptpl = p.aptpl;
      d.generation++;
      return done(true);
    }

    if (!reg || p.key !== reg.key) throw reservationConflict();

    switch (p.serviceAction) {
      case op.PRO_RESERVE: {
        checkScopeAndType(p);
        if (d.reservation) {
          if (holderIs(reg) && d.reservation.type === p.type && d.reservation.scope === p.scope) return done(false);
          throw reservationConflict();
        }
        d.reservation = reservationFor(reg, p);
        return done(true);
      }
      case op.PRO_RELEASE: {
        if (!d.reservation || !holderIs(reg)) return done(false);
        if (d.reservation.type !== p.type || d.reservation.scope !== p.scope) {
          throw new ScsiError(op.ILLEGAL_REQUEST, op.ASC_INVALID_RELEASE_OF_PERSISTENT_RESERVATION);
        }
        const type = d.reservation.type;
        d.reservation = undefined;
        if (registrantsOnly(type) || allRegistrants(type)) notifyOthers(op.ASC_RESERVATIONS_RELEASED);
        return done(true);
      }
      case op.PRO_CLEAR: {
        notifyOthers(op.ASC_RESERVATIONS_PREEMPTED);
        d.registrations = [];
        d.reservation = undefined;
        d.generation++;
        return done(true);
      }
      case op.PRO_PREEMPT:
      case op.PRO_PREEMPT_AND_ABORT: {
        const withAbort = p.serviceAction === op.PRO_PREEMPT_AND_ABORT;
        const r = d.reservation;
        const victims = (includeSelf: boolean) =>
          d.registrations.filter((x) => x.key === p.serviceActionKey && (includeSelf || x !== reg));
        let removed: Registration[];
        if (!r) {
          if (p.serviceActionKey === ZERO_KEY) throw invalidFieldInParameterList(8);
          removed = victims(true);
          if (removed.length === 0) throw reservationConflict();
        } else if (allRegistrants(r.type) && p.serviceActionKey === ZERO_KEY) {
          checkScopeAndType(p);
          removed = d.registrations.filter((x) => x !== reg);
          d.reservation = reservationFor(reg, p);
        } else if (!allRegistrants(r.type) && holderKey(d) === p.serviceActionKey) {
          checkScopeAndType(p);
          removed = victims(false);
          const changedType = r.type !== p.type || r.scope !== p.scope;
          d.reservation = reservationFor(reg, p);
          if (changedType) notifyOthers(op.ASC_RESERVATIONS_RELEASED, new Set(removed));
        } else {
          if (p.serviceActionKey === ZERO_KEY) throw invalidFieldInParameterList(8);
          removed = victims(true);
          if (removed.length === 0) throw reservationConflict();
        }
        const gone = new Set(removed);
        for (const x of removed) {
          uas.push({ ...affected(x), asc: op.ASC_REGISTRATIONS_PREEMPTED });
          if (withAbort) abort.push(affected(x));
        }
        d.registrations = d.registrations.filter((x) => !gone.has(x));
        if (d.reservation && !d.registrations.some(holderIs)) d.reservation = undefined;
        d.generation++;
        return done(true);
      }
      default:
        throw invalidFieldInCdb(1, 4);
    }
  }
}

function holderKey(d: Draft): string | undefined {
  const h = d.reservation?.holder;
  return h && d.registrations.find((r) => isHolderOf(h, r))?.key;
}

function reservationFor(reg: Registration, p: ProutParameters): PersistentReservation {
  return allRegistrants(p.type)
    ? { type: p.type, scope: p.scope }
    : {
        type: p.type,
        scope: p.scope,
        holder: { initiatorPort: reg.initiatorPort, targetName: reg.targetName, relativeTargetPortId: reg.relativeTargetPortId },
      };
}

function checkScopeAndType(p: ProutParameters): void {
  if (p.scope !== 0) throw invalidFieldInCdb(2, 7);
  if (!VALID_TYPES.has(p.type)) throw invalidFieldInCdb(2, 3);
}
