import type { Asc } from './opcodes.js';

/** Enough for a burst of events; older conditions beyond it are dropped (the newest matter). */
const MAX_PENDING = 16;

/**
 * Unit attention conditions, queued per I_T nexus and logical unit (SAM-5 5.14) and
 * reported one per command, oldest first.
 */
export class UnitAttentions {
  private readonly pending = new Map<string, Map<number, Asc[]>>();
  /** Every nexus that has sent a command: the ones a target-wide event must reach. */
  private readonly nexuses = new Set<string>();

  see(nexusKey: string): void {
    this.nexuses.add(nexusKey);
  }

  forget(nexusKey: string): void {
    this.nexuses.delete(nexusKey);
    this.pending.delete(nexusKey);
  }

  queue(nexusKey: string, lun: number, asc: Asc): void {
    let luns = this.pending.get(nexusKey);
    if (!luns) this.pending.set(nexusKey, (luns = new Map()));
    let list = luns.get(lun);
    if (!list) luns.set(lun, (list = []));
    if (list.some((a) => a[0] === asc[0] && a[1] === asc[1])) return;
    list.push(asc);
    if (list.length > MAX_PENDING) list.shift();
  }

  /** Queues for every known nexus (but `except`) on each of `luns`. */
  queueAll(luns: readonly number[], asc: Asc, except?: string): void {
    for (const nexusKey of this.nexuses) {
      if (nexusKey === except) continue;
      for (const lun of luns) this.queue(nexusKey, lun, asc);
    }
  }

  peek(nexusKey: string, lun: number): Asc | undefined {
    return this.pending.get(nexusKey)?.get(lun)?.[0];
  }

  take(nexusKey: string, lun: number): Asc | undefined {
    const luns = this.pending.get(nexusKey);
    const list = luns?.get(lun);
    const asc = list?.shift();
    if (list && list.length === 0) luns!.delete(lun);
    return asc;
  }

  /** Drops pending conditions of one kind (the nexus caused the event itself). */
  clear(nexusKey: string, lun: number, asc: Asc): void {
    const list = this.pending.get(nexusKey)?.get(lun);
    if (!list) return;
    const kept = list.filter((a) => a[0] !== asc[0] || a[1] !== asc[1]);
    if (kept.length) this.pending.get(nexusKey)!.set(lun, kept);
    else this.pending.get(nexusKey)!.delete(lun);
  }

  /** Clears conditions of a logical unit that went away. */
  dropLun(lun: number): void {
    for (const luns of this.pending.values()) luns.delete(lun);
  }
}
