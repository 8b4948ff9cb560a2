import type { Database, RootDatabase } from 'lmdb';
import type { ReservationState, ReservationStore } from './reservation-store.js';

/** Persistent reservations in the member's LMDB, so APTPL registrations survive a restart. */
export class LmdbReservationStore implements ReservationStore {
  private readonly db: Database<ReservationState, string>;

  constructor(root: RootDatabase) {
    this.db = root.openDB<ReservationState, string>({ name: 'scsi-reservations' });
  }

  load(key: string): ReservationState | undefined {
    return this.db.get(key);
  }

  async save(key: string, state: ReservationState): Promise<void> {
    await this.db.put(key, state);
  }
}
