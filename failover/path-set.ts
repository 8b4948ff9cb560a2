/**
 * The control half of a multipath device (a path failover set), as multipathd is to the
 * dm-multipath target. The device fails a path when its transport fails and moves I/O at
 * once; this set decides what depends on time or policy, from the device's events:
 *
 *  - probing: every path is read every `probeIntervalMs` (sooner while none is usable), which
 *    finds idle paths that broke and failed paths that came back;
 *  - marginal: a path that failed `marginal.failures` times inside `marginal.windowMs` is kept
 *    out when it comes back, until it has answered for a whole window (or an operator clears it);
 *  - failback (active-passive): back to the preferred path at once, after N seconds of health,
 *    or only when the operator asks;
 *  - roles: the active path is Primary, the next usable standby Secondary, the rest Alternates
 *    (active-active: the first active path is Primary, the other active ones Secondaries);
 *  - operator actions (path-actions.ts).
 */
import { isTransportError } from '../fabric/errors.js';
import type { PathStateEvent } from '../fabric/events.js';
import { logger, type Logger } from '../fabric/log.js';
import type { MultipathDevice, PathInfo } from '../fabric/layers/multipath/multipath.js';
import { describeActions, type ActionTable } from './action.js';
import { BackgroundWork } from './background.js';
import type { SetContext } from './context.js';
import { FailureWindow, type FailureLimit } from './failure-window.js';
import { ProbeScheduler } from './probe-scheduler.js';
import type { Failback, FailoverSet, PathMember, PathMemberState, PathSetState, Role } from './set.js';

export interface PathPolicy {
  readonly failback: Failback;
  /** 0 disables probing. */
  readonly probeIntervalMs: number;
  readonly marginal: FailureLimit;
}

export const PATH_POLICY_DEFAULTS: PathPolicy = {
  failback: 'immediate',
  probeIntervalMs: 2_000,
  marginal: { failures: 3, windowMs: 60_000 },
};

/** While no path is usable, probe this often at most, so a returning path is found fast. */
const URGENT_PROBE_MS = 100;

/** What the set keeps per path beyond the device's own state. */
interface PathRecord {
  readonly window: FailureWindow;
  /** Kept out by the set: flapping, or by the operator. */
  hold: 'marginal' | 'offline' | undefined;
  /** Since when the path has been usable (timed failback), or marginal and answering. */
  since: number;
  probing: boolean;
}

export class PathSet implements FailoverSet {
  readonly kind = 'multipath';
  readonly name: string;
  readonly policy: PathPolicy;
  readonly actions: ActionTable;
  readonly log: Logger;
  private readonly records = new Map<string, PathRecord>();
  private readonly scheduler: ProbeScheduler;
  private readonly work: BackgroundWork;
  /** A path the set itself is taking out: not a failure of the path. */
  private takingOut: string | undefined;
  private stopped = false;

  constructor(
    readonly multipath: MultipathDevice,
    policy: Partial<PathPolicy>,
    readonly context: SetContext,
    /** The operator's actions on this set (path-actions.ts, given by the caller so the two files do not import each other). */
    actions: (set: PathSet) => ActionTable,
  ) {
    this.name = multipath.name;
    this.policy = { ...PATH_POLICY_DEFAULTS, ...policy };
    this.log = logger('failover', { set: this.name, kind: 'multipath' });
    this.work = new BackgroundWork(this.log);
    const now = Date.now();
    for (const p of multipath.info().paths) this.records.set(p.name, { window: new FailureWindow(this.policy.marginal), hold: undefined, since: now, probing: false });
    this.scheduler = new ProbeScheduler(() => this.probeRound(), {
      intervalMs: this.policy.probeIntervalMs,
      urgentMs: URGENT_PROBE_MS,
      urgent: () => this.multipath.info().state === 'failed',
    });
    this.actions = actions(this);
  }

  start(): void {
    this.scheduler.start();
  }

  stop(): void {
    this.stopped = true;
    this.scheduler.stop();
  }

  settled(): Promise<void> {
    return this.work.settled();
  }

  // ---- reacting to the device ----

  onPathState(event: PathStateEvent): void {
    const record = this.record(event.path);
    if (event.to === 'failed') {
      // One failure per loss of a path, whoever noticed it (I/O or probe); not when the set itself took it out.
      if (event.from !== 'failed' && this.takingOut !== event.path) record.window.record(Date.now());
    } else if (event.from === 'failed') record.since = Date.now();
  }

  /** No usable path left: probe at once, then often, so a returning one is found fast. */
  onDeviceState(): void {
    if (!this.stopped && this.multipath.info().state === 'failed') this.scheduler.now();
  }

  // ---- probing and policy ----

  private probeRound(): void {
    if (this.stopped) return;
    for (const p of this.multipath.info().paths) {
      const record = this.record(p.name);
      if (!record.probing && record.hold !== 'offline') this.work.track(this.probe(p, record));
    }
    this.timedFailback();
  }

  private async probe(path: PathInfo, record: PathRecord): Promise<void> {
    record.probing = true;
    let ok = true;
    try {
      await this.multipath.probePath(path.name);
    } catch (err) {
      // A path that answered with an error is alive; only a transport failure counts.
      ok = !isTransportError(err);
      if (!ok && !this.stopped) {
        if (this.pathInfo(path.name)?.state !== 'failed') this.multipath.failPath(path.name, `probe failed: ${message(err)}`);
        if (record.hold === 'marginal') record.since = Date.now();
      }
    } finally {
      record.probing = false;
    }
    if (!ok || this.stopped) return;
    const now = this.pathInfo(path.name);
    if (now?.state !== 'failed') return;
    if (record.hold === undefined) this.recovered(path.name, record);
    else if (record.hold === 'marginal' && Date.now() - record.since >= this.policy.marginal.windowMs) {
      record.window.clear();
      record.hold = undefined;
      this.bringIntoService(path.name, `healthy for ${this.policy.marginal.windowMs} ms after being marginal`);
    }
  }

  /** A failed path answered its probe: back in service, unless it has been flapping. */
  private recovered(name: string, record: PathRecord): void {
    const now = Date.now();
    const { failures, windowMs } = this.policy.marginal;
    if (record.window.reached(now)) {
      record.hold = 'marginal';
      record.since = now;
      this.log.warn({ path: name, failures: record.window.count(now), windowMs }, `path ${name} marginal: ${failures} failures within ${windowMs} ms`);
      return;
    }
    this.bringIntoService(name, 'path recovered');
  }

  /** Reinstate a path, then fail back to it if the policy says at once. */
  bringIntoService(name: string, why: string): void {
    this.multipath.reinstatePath(name, why);
    const info = this.multipath.info();
    if (info.policy !== 'active-passive' || this.policy.failback !== 'immediate' || info.activePath === undefined) return;
    if (this.indexOf(name) < this.indexOf(info.activePath)) this.multipath.makeActive(name, `${why}, immediate failback`);
  }

  private timedFailback(): void {
    const failback = this.policy.failback;
    const info = this.multipath.info();
    if (info.policy !== 'active-passive' || typeof failback !== 'number' || info.activePath === undefined) return;
    const preferred = info.paths.find((p) => p.state !== 'failed');
    if (!preferred || preferred.name === info.activePath || this.indexOf(preferred.name) > this.indexOf(info.activePath)) return;
    if (Date.now() - this.record(preferred.name).since >= failback * 1000) this.multipath.makeActive(preferred.name, `healthy for ${failback} s, failback`);
  }

  /** Take a path out on the set's own account (operator), not counted as a failure. */
  takeOut(name: string, reason: string): void {
    this.takingOut = name;
    try {
      this.multipath.failPath(name, reason);
    } finally {
      this.takingOut = undefined;
    }
  }

  /** Probe one path now; true if it answered. */
  async probeNow(name: string): Promise<boolean> {
    try {
      await this.multipath.probePath(name);
      return true;
    } catch (err) {
      return !isTransportError(err);
    }
  }

  // ---- state ----

  record(name: string): PathRecord {
    const record = this.records.get(name);
    if (!record) throw new Error(`multipath set ${this.name} has no path ${name}`);
    return record;
  }

  pathInfo(name: string): PathInfo | undefined {
    return this.multipath.info().paths.find((p) => p.name === name);
  }

  memberState(p: PathInfo): PathMemberState {
    return this.records.get(p.name)?.hold ?? p.state;
  }

  private indexOf(name: string): number {
    return this.multipath.info().paths.findIndex((p) => p.name === name);
  }

  state(): PathSetState {
    const info = this.multipath.info();
    const now = Date.now();
    const roles = rolesOf(info.paths, info.activePath, info.policy === 'active-active');
    const members: PathMember[] = info.paths.map((p, i) => {
      const nested = this.context.set(p.name);
      const record = this.record(p.name);
      return {
        kind: 'path',
        name: p.name,
        role: roles[i]!,
        state: this.memberState(p),
        health: { recentFailures: record.window.count(now), window: this.policy.marginal, ...(p.lastError !== undefined && { lastError: p.lastError }) },
        outstanding: p.outstanding,
        ios: p.ios,
        errors: p.errors,
        ...(nested && { set: nested.name }),
      };
    });
    const parent = this.context.parentOf(this.name);
    return {
      kind: 'multipath',
      name: this.name,
      device: this.multipath.name,
      composition: members.some((m) => m.set !== undefined) ? 'hierarchical' : info.policy === 'active-active' ? 'n-way' : 'single',
      serving: info.policy === 'active-active' ? 'all' : 'one',
      state: info.state,
      members,
      ...(parent && { parent }),
      actions: describeActions(this.actions),
      policy: { mode: info.policy, failback: this.policy.failback, probeIntervalMs: this.policy.probeIntervalMs, marginal: this.policy.marginal },
      ...(info.activePath !== undefined && { activePath: info.activePath }),
      waiting: info.waiting,
    };
  }
}

function rolesOf(paths: readonly PathInfo[], active: string | undefined, allActive: boolean): Role[] {
  let secondaryGiven = false;
  const firstActive = paths.find((p) => p.state === 'active')?.name;
  return paths.map((p) => {
    if (allActive) return p.state !== 'active' ? 'alternate' : p.name === firstActive ? 'primary' : 'secondary';
    if (p.name === active) return 'primary';
    if (p.state === 'standby' && !secondaryGiven) {
      secondaryGiven = true;
      return 'secondary';
    }
    return 'alternate';
  });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
