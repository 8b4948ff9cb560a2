import { connect } from 'node:net';
import { logger } from '../../fabric/log.js';
import type { AccessState, AluaState } from '../scsi/alua.js';
import { targetAddress } from './portal-groups.js';
import type { IscsiTargetConfig } from './target-config.js';

const log = logger('iscsi-cluster');

/** Who is Primary of the target's failover set, as this member sees it (failover/cluster/set-view.ts). */
export interface PrimaryWatch {
  current(): { readonly member: string; readonly ready: boolean } | undefined;
  on(event: 'change', listener: () => void): unknown;
  off(event: 'change', listener: () => void): unknown;
}

/** Where a login for a target goes now. */
export type LoginRoute =
  | { readonly kind: 'serve' }
  | { readonly kind: 'redirect'; readonly address: string }
  /** Nobody can take it yet (failover under way, the Primary opening its ports): ask again when `until` settles. */
  | { readonly kind: 'wait'; readonly until: Promise<void> };

export const SERVE: LoginRoute = Object.freeze({ kind: 'serve' });

/** How long a redirect target found listening is trusted without asking again. */
const REACHABLE_MS = 2000;
const PROBE_TIMEOUT_MS = 500;
/** A waiting login looks again at least this often (a missed change costs no more). */
const RECHECK_MS = 250;

/**
 * A target served by every member of its failover set, each on its own portal groups: the
 * same group layout on every member (every member lists every group), states that follow
 * the set's Primary — its groups active/optimized, the others standby, every group
 * transitioning while no Primary is known or the Primary is still opening its ports — and
 * logins placed accordingly: served by the Primary, redirected to it by the others (or,
 * with `standbyLogin: accept`, served on a standby path for ALUA-aware initiators).
 *
 * A redirect names a portal only once a TCP connection to it succeeded: the arbiter may
 * still name a Primary that just died (an etcd lease outlives its holder by up to its TTL),
 * and an initiator sent to a dead portal backs off for seconds before it tries again.
 */
export class ClusterPlacement {
  private readonly reachable = new Map<string, number>();
  private readonly probing = new Map<string, Promise<void>>();
  private serving = false;

  constructor(
    private readonly config: IscsiTargetConfig,
    private readonly memberId: string,
    private readonly watch: PrimaryWatch,
    private readonly alua: AluaState,
    /** This member stopped being Primary: its sessions of the target go (redirect mode), so initiators log in again and are sent on. */
    private readonly onDemoted: () => void,
  ) {}

  start(): void {
    this.watch.on('change', this.onChange);
    this.onChange();
  }

  stop(): void {
    this.watch.off('change', this.onChange);
  }

  /** The group states every member reports for the current Primary. */
  states(): Map<number, AccessState> {
    const p = this.watch.current();
    const out = new Map<number, AccessState>();
    for (const g of this.config.portalGroups) {
      let state: AccessState;
      if (!p) state = 'transitioning';
      else if (g.member === p.member) state = p.ready ? 'active/optimized' : 'transitioning';
      else state = 'standby';
      out.set(g.id, state);
    }
    return out;
  }

  route(): LoginRoute {
    if (this.config.standbyLogin === 'accept') return SERVE;
    const p = this.watch.current();
    if (!p) return this.waitForChange();
    if (p.member === this.memberId) return p.ready ? SERVE : this.waitForChange();
    const address = this.addressOf(p.member);
    if (!address) return this.waitForChange();
    const seen = this.reachable.get(address.key);
    if (seen !== undefined && Date.now() - seen < REACHABLE_MS) return { kind: 'redirect', address: address.value };
    return { kind: 'wait', until: this.probe(address.key, address.host, address.port) };
  }

  private readonly onChange = (): void => {
    this.alua.follow(this.states());
    const p = this.watch.current();
    const serving = p?.member === this.memberId;
    if (this.serving && !serving && this.config.standbyLogin !== 'accept') this.onDemoted();
    this.serving = serving;
  };

  /** The first portal of the member's first group: `TargetAddress` and the address to probe. */
  private addressOf(member: string): { key: string; value: string; host: string; port: number } | undefined {
    const group = this.config.portalGroups.find((g) => g.member === member);
    const portal = group?.portals[0];
    if (!group || !portal) return undefined;
    return { key: `${portal.host}:${portal.port}`, value: targetAddress(portal.host, portal.port, group.id), host: portal.host, port: portal.port };
  }

  private probe(key: string, host: string, port: number): Promise<void> {
    let running = this.probing.get(key);
    if (!running) {
      running = new Promise<void>((resolve) => {
        const socket = connect({ host, port });
        const done = (ok: boolean): void => {
          clearTimeout(timer);
          socket.destroy();
          this.probing.delete(key);
          if (ok) this.reachable.set(key, Date.now());
          else {
            this.reachable.delete(key);
            log.info({ target: this.config.name, portal: key }, 'the Primary named by the arbiter does not answer yet: holding the login');
          }
          // After a failed probe, look again a little later rather than at once.
          if (ok) resolve();
          else setTimeout(resolve, RECHECK_MS).unref();
        };
        const timer = setTimeout(() => done(false), PROBE_TIMEOUT_MS);
        socket.once('connect', () => done(true));
        socket.once('error', () => done(false));
      });
      this.probing.set(key, running);
    }
    return running;
  }

  private waitForChange(): LoginRoute {
    return {
      kind: 'wait',
      until: new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.watch.off('change', done);
          resolve();
        };
        const timer = setTimeout(done, RECHECK_MS);
        this.watch.on('change', done);
      }),
    };
  }
}
