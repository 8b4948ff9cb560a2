/**
 * Persistent reservation state of one device (every LUN that maps it), as stored. Keys are
 * 16 hex digits (8-byte reservation keys), so the record is plain JSON/msgpack without BigInt.
 */
export interface Registration {
  /** Initiator port: `iqn…,i,0x<isid>` (SPC-4 iSCSI TransportID format). */
  readonly initiatorPort: string;
  /**
   * The target the registration came through: state is kept per device, and the same
   * device may be a LUN of several targets (whose relative port ids both start at 1).
   * Records written before state was per device have none (read as their target's).
   */
  readonly targetName?: string;
  readonly relativeTargetPortId: number;
  /** Registered through every target port (ALL_TG_PT). */
  readonly allTargetPorts: boolean;
  readonly key: string;
}

export interface PersistentReservation {
  readonly type: number;
  readonly scope: number;
  /** The holding registration's nexus; absent for the all-registrants types. */
  readonly holder?: ReservationHolder;
}

export interface ReservationHolder {
  readonly initiatorPort: string;
  readonly targetName?: string;
  readonly relativeTargetPortId: number;
}

/** The I_T nexus of a registration is the holder's. */
export function isHolderOf(holder: ReservationHolder | undefined, r: Registration): boolean {
  return (
    holder !== undefined &&
    holder.initiatorPort === r.initiatorPort &&
    holder.relativeTargetPortId === r.relativeTargetPortId &&
    holder.targetName === r.targetName
  );
}

export interface ReservationState {
  /** PRGENERATION (SPC-4 6.15.2). */
  readonly generation: number;
  /** Activate Persist Through Power Loss, as last set by a registration. */
  readonly aptpl: boolean;
  readonly registrations: readonly Registration[];
  readonly reservation?: PersistentReservation;
}

export const EMPTY_RESERVATION_STATE: ReservationState = Object.freeze({
  generation: 0,
  aptpl: false,
  registrations: [],
});

export interface ReservationStore {
  load(key: string): ReservationState | undefined;
  save(key: string, state: ReservationState): Promise<void>;
}

/** A record from before reservations were per device: its registrations are its target's. */
export function fromTargetRecord(state: ReservationState, targetName: string): ReservationState {
  const holder = state.reservation?.holder;
  return {
    ...state,
    registrations: state.registrations.map((r) => ({ ...r, targetName: r.targetName ?? targetName })),
    ...(state.reservation && {
      reservation: { ...state.reservation, ...(holder && { holder: { ...holder, targetName: holder.targetName ?? targetName } }) },
    }),
  };
}

/** For tests and targets with nothing to persist to. */
export class MemoryReservationStore implements ReservationStore {
  private readonly states = new Map<string, ReservationState>();

  load(key: string): ReservationState | undefined {
    const s = this.states.get(key);
    return s && structuredClone(s);
  }

  async save(key: string, state: ReservationState): Promise<void> {
    this.states.set(key, structuredClone(state));
  }
}
