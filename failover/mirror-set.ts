/**
 * The control half of a mirror (a data-store failover set): replicas are Primary and
 * Secondaries, hot spares are Alternates. The mirror (fabric/layers/mirror) carries the I/O
 * and takes a replica out when the data path needs it; this set decides everything that
 * depends on time or policy, from the mirror's events:
 *
 *  - failure limit: a replica failing more than `failureLimit.failures` times inside
 *    `failureLimit.windowMs` is quarantined until an operator clears it;
 *  - probing: failed replicas are read every `probeIntervalMs` and readmitted once they answer;
 *  - resync: a stale member (readmitted, promoted, restored) is resynced;
 *  - spare promotion: a standby spare replaces an out-of-service member;
 *  - roles: the first in-sync member in configured order is Primary;
 *  - operator actions (mirror-actions.ts).
 */
import { isBlockError } from '../fabric/errors.js';
import type { IoErrorEvent, ReplicaStateEvent } from '../fabric/events.js';
import { logger, type Logger } from '../fabric/log.js';
import type { MirrorDevice, ReplicaInfo } from '../fabric/layers/mirror/mirror.js';
import { describeActions, type ActionTable } from './action.js';
import type { SetContext } from './context.js';
import { FailureWindow, type FailureLimit } from './failure-window.js';
import { ProbeScheduler } from './probe-scheduler.js';
import type { FailoverSet, MirrorSetState, ReplicaMember, Role } from './set.js';
import { BackgroundWork } from './background.js';

export interface MirrorPolicy {
  readonly failureLimit: FailureLimit;
  /** How often failed replicas are probed for their return; 0 disables probing. */
  readonly probeIntervalMs: number;
}

export const MIRROR_POLICY_DEFAULTS: MirrorPolicy = {
  failureLimit: { failures: 5, windowMs: 10 * 60 * 1000 },
  probeIntervalMs: 2000,
};

export class MirrorSet implements FailoverSet {
  readonly kind = 'mirror';
  readonly name: string;
  readonly policy: MirrorPolicy;
  readonly actions: ActionTable;
  readonly log: Logger;
  private readonly windows = new Map<string, FailureWindow>();
  private readonly scheduler: ProbeScheduler;
  private readonly work: BackgroundWork;
  private probing = false;
  private stopped = false;
  private reconciling = false;
  private reconcileAgain = false;

  constructor(
    readonly mirror: MirrorDevice,
    policy: Partial<MirrorPolicy>,
    readonly context: SetContext,
    /** The operator's actions on this set (mirror-actions.ts, given by the caller so the two files do not import each other). */
    actions: (set: MirrorSet) => ActionTable,
  ) {
    this.name = mirror.name;
    this.policy = { ...MIRROR_POLICY_DEFAULTS, ...policy };
    this.log = logger('failover', { set: this.name, kind: 'mirror' });
    this.work = new BackgroundWork(this.log);
    this.scheduler = new ProbeScheduler(() => this.work.track(this.probeRound()), {
      intervalMs: this.policy.probeIntervalMs,
      urgentMs: this.policy.probeIntervalMs,
      urgent: () => false,
    });
    this.actions = actions(this);
  }

  start(): void {
    this.reconcile();
    this.scheduler.start();
  }

  stop(): void {
    this.stopped = true;
    this.scheduler.stop();
  }

  settled(): Promise<void> {
    return Promise.all([this.work.settled(), this.mirror.settled()]).then(() => undefined);
  }

  /** Run `p` in the background, logging its failure (a refusal of the last replica, a save). */
  track(p: Promise<unknown>): void {
    this.work.track(p);
  }

  // ---- reacting to the mirror ----

  onReplicaState(_event: ReplicaStateEvent): void {
    if (!this.stopped) this.reconcile();
  }

  onDeviceState(): void {
    if (!this.stopped) this.reconcile();
  }

  /** Every failure of a replica in service counts towards its limit; past it, quarantine. */
  onIoError(event: IoErrorEvent): void {
    if (this.stopped || event.alreadyOut) return;
    const window = this.window(event.member);
    const now = Date.now();
    window.record(now);
    if (!window.exceeded(now)) return;
    const { failures, windowMs } = this.policy.failureLimit;
    const reason = `failure limit exceeded (more than ${failures} failures in ${windowMs} ms): ${event.message}`;
    this.track(
      this.mirror.fail(event.member, reason, 'quarantined').catch((err: unknown) => {
        // The last in-sync replica stays: there is nothing else to read.
        if (isBlockError(err) && err.code === 'EPERM') this.log.error({ replica: event.member, err: err.message }, 'failure limit exceeded, but quarantine refused');
        else throw err;
      }),
    );
  }

  /**
   * Bring the members in line with the policy: Primary, resyncs of stale members, spares in
   * place of members out of service. Safe to run at any time, as often as wanted.
   */
  reconcile(): void {
    // The mechanism calls below publish events that land here again: run once more after.
    if (this.reconciling) {
      this.reconcileAgain = true;
      return;
    }
    this.reconciling = true;
    try {
      do {
        this.reconcileAgain = false;
        this.reconcileOnce();
      } while (this.reconcileAgain && !this.stopped);
    } finally {
      this.reconciling = false;
    }
  }

  private reconcileOnce(): void {
    const replicas = this.mirror.info().replicas;
    const primary = replicas.find((r) => r.slot === 'member' && r.state === 'in-sync');
    if (primary?.name !== replicas.find((r) => r.primary)?.name) this.mirror.setPrimary(primary?.name);
    // Spares first: a promoted spare is stale, and resynced below on the next pass.
    const spares = replicas.filter((r) => r.slot === 'alternate' && r.state === 'standby');
    for (const down of replicas.filter((r) => r.slot === 'member' && isOut(r))) {
      const spare = spares.shift();
      if (!spare) break;
      this.track(this.mirror.promoteSpare(spare.name, down.name));
    }
    for (const r of replicas) if (r.slot === 'member' && r.state === 'stale') this.mirror.startResync(r.name);
  }

  // ---- probing ----

  private async probeRound(): Promise<void> {
    if (this.probing || this.stopped) return;
    this.probing = true;
    try {
      for (const r of this.mirror.info().replicas) {
        if (this.stopped) return;
        if (r.state === 'failed') await this.probeAndReadmit(r.name, 'probe read succeeded');
      }
      this.reconcile();
    } finally {
      this.probing = false;
    }
  }

  /** Probe a failed replica; readmit it if it answers. True if it is back (by this call or another). */
  async probeAndReadmit(name: string, reason: string): Promise<boolean> {
    try {
      await this.mirror.probe(name);
    } catch {
      return false;
    }
    const now = this.replicaInfo(name);
    if (this.stopped || !now) return false;
    if (now.state === 'failed') await this.mirror.readmit(name, reason);
    return !isOut(this.replicaInfo(name)!);
  }

  // ---- state ----

  replicaInfo(name: string): ReplicaInfo | undefined {
    return this.mirror.info().replicas.find((r) => r.name === name);
  }

  window(name: string): FailureWindow {
    let w = this.windows.get(name);
    if (!w) this.windows.set(name, (w = new FailureWindow(this.policy.failureLimit)));
    return w;
  }

  state(): MirrorSetState {
    const info = this.mirror.info();
    const now = Date.now();
    const members: ReplicaMember[] = info.replicas.map((r) => {
      const nested = this.context.set(r.name);
      return {
        kind: 'replica',
        name: r.name,
        role: roleOf(r),
        slot: r.slot,
        state: r.state,
        health: { recentFailures: this.window(r.name).count(now), window: this.policy.failureLimit, ...(r.lastError !== undefined && { lastError: r.lastError }) },
        dirtyBytes: r.dirtyBytes,
        outstandingBytes: r.outstandingBytes,
        readErrors: r.readErrors,
        writeErrors: r.writeErrors,
        readRepairs: r.readRepairs,
        ...(nested && { set: nested.name }),
      };
    });
    const parent = this.context.parentOf(this.name);
    return {
      kind: 'mirror',
      name: this.name,
      device: this.mirror.name,
      composition: members.some((m) => m.set !== undefined) ? 'hierarchical' : 'n-way',
      serving: 'all',
      state: info.state,
      members,
      ...(parent && { parent }),
      actions: describeActions(this.actions),
      policy: { readPolicy: info.readPolicy, failureLimit: this.policy.failureLimit, probeIntervalMs: this.policy.probeIntervalMs, resyncRateMiBps: info.resyncRateMiBps },
      resync: info.resync,
      bytesResynced: info.bytesResynced,
      readRepairs: info.readRepairs,
      metadataErrors: info.metadataErrors,
      metadataFaults: info.metadataFaults,
    };
  }
}

export function isOut(r: ReplicaInfo): boolean {
  return r.state === 'failed' || r.state === 'quarantined' || r.state === 'offline';
}

function roleOf(r: ReplicaInfo): Role {
  if (r.slot === 'alternate') return 'alternate';
  return r.primary ? 'primary' : 'secondary';
}
