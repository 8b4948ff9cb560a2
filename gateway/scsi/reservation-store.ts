/**
 * Persistent reservation state of one logical unit, as stored. Keys are 16 hex digits
 * (8-byte reservation keys), so the record is plain JSON/msgpack without BigInt.
 */
export interface Registration {
  /** Initiator port: `iqn…,i,0x<isid>` (SPC-4 iSCSI TransportID format). */
  readonly initiatorPort: string;
  readonly relativeTargetPortId: number;
  /** Registered through every target port (ALL_TG_PT). */
  readonly allTargetPorts: boolean;
  readonly key: string;
}

export interface PersistentReservation {
  readonly type: number;
  readonly scope: number;
  /** The holding registration's nexus; absent for the all-registrants types. */
  readonly holder?: { readonly initiatorPort: string; readonly relativeTargetPortId: number };
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
  load(lunKey: string): ReservationState | undefined;
  save(lunKey: string, state: ReservationState): Promise<void>;
}

/** For tests and targets with nothing to persist to. */
export class MemoryReservationStore implements ReservationStore {
  private readonly states = new Map<string, ReservationState>();

  load(lunKey: string): ReservationState | undefined {
    const s = this.states.get(lunKey);
    return s && structuredClone(s);
  }

  async save(lunKey: string, state: ReservationState): Promise<void> {
    this.states.set(lunKey, structuredClone(state));
  }
}
