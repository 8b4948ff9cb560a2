import { EventEmitter } from 'node:events';
import { logger } from '../../fabric/log.js';
import type { Arbiter } from '../arbitration/arbiter.js';

const log = logger('set-view');

/** Who serves a failover set, as one member sees it. */
export interface PrimaryInfo {
  readonly member: string;
  readonly token: number;
  /**
   * The Primary has opened the set's ports. Known for this member itself; another member is
   * taken as ready once it holds the role (its ports defer what arrives before they open).
   */
  readonly ready: boolean;
}

/**
 * One member's view of a set's Primary, for the ports every member serves whatever its role
 * (iSCSI portal groups report the same ALUA states on every member; a login at a
 * non-Primary is redirected to the Primary). This member's own term comes from its runner
 * the moment it changes; another member's from the arbiter, asked every `pollMs` while this
 * member is not Primary. `undefined` means no Primary is known: the set is failing over.
 */
export class SetView extends EventEmitter<{ change: [primary: PrimaryInfo | undefined] }> {
  private primary: PrimaryInfo | undefined;
  private own = false;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private stopped = false;

  constructor(
    readonly set: string,
    readonly member: string,
    private readonly arbiter: Pick<Arbiter, 'leader'>,
    private readonly pollMs = 200,
  ) {
    super();
  }

  current(): PrimaryInfo | undefined {
    return this.primary;
  }

  /** This member is Primary (ready once its ports are open); polling the arbiter stops meanwhile. */
  self(token: number, ready: boolean): void {
    this.own = true;
    this.clearTimer();
    this.update({ member: this.member, token, ready });
  }

  /** This member's term ended: nobody is known to serve until the arbiter names the next one. */
  selfEnded(): void {
    if (!this.own) return;
    this.own = false;
    this.update(undefined);
    this.schedule(0);
  }

  /** Start watching the arbiter (while this member is not Primary). */
  start(): void {
    this.stopped = false;
    if (!this.own) this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    this.clearTimer();
  }

  private schedule(ms: number): void {
    if (this.stopped || this.own || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.poll();
    }, ms);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    if (this.polling || this.own || this.stopped) return;
    this.polling = true;
    try {
      const leader = await this.arbiter.leader(this.set);
      // The runner may have made this member Primary while the arbiter answered.
      if (!this.own && !this.stopped) this.update(leader && { member: leader.member, token: leader.token, ready: true });
    } catch (err) {
      log.debug({ err, set: this.set }, 'could not ask the arbiter who is Primary');
    } finally {
      this.polling = false;
      this.schedule(this.pollMs);
    }
  }

  private update(next: PrimaryInfo | undefined): void {
    const prev = this.primary;
    if (prev?.member === next?.member && prev?.token === next?.token && prev?.ready === next?.ready) return;
    this.primary = next;
    log.info({ set: this.set, primary: next?.member ?? null, token: next?.token, ready: next?.ready }, 'set Primary seen');
    this.emit('change', next);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
