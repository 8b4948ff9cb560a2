import { EventEmitter } from 'node:events';
import { logger } from '../../fabric/log.js';
import type { Arbiter, Leadership, LeadershipEnd } from '../arbitration/arbiter.js';
import type { FailoverSetConfig } from '../config/schema/cluster.js';
import { SetView } from './set-view.js';

const log = logger('failover-set');

/** What a member does when it gains or loses the Primary role of a set (its front-end ports). */
export interface SetActions {
  /** Start serving: bind the set's listeners, take its service address. The gate is already open. */
  activate(leadership: Leadership): Promise<void>;
  /** Stop serving at once: close listeners and connections, release the service address. */
  deactivate(why: LeadershipEnd | 'activation-failed' | 'start-up'): Promise<void>;
}

export type SetRole = 'primary' | 'standby' | 'stopped';

/** How often a member waiting for permission to campaign (or campaigning) re-reads its gate. */
const GATE_POLL_MS = 50;
const ALWAYS = (): boolean => true;

/** The system-wide monotonic clock (CLOCK_MONOTONIC): comparable between processes of one machine. */
export function monotonicNs(): string {
  return process.hrtime.bigint().toString();
}

/**
 * One member's part in one failover set: campaign, serve while Primary, and campaign again
 * (as a standby) after losing the role, until stopped. The serving interval is logged with
 * the machine's monotonic clock at both ends (`serving` / `stopped serving`), so the
 * intervals of every member can be checked never to overlap.
 */
export interface SetRunnerEvents {
  /** A Primary term ended (a fence: lease-expired, lease-lost, superseded; or a planned end). */
  ended: [LeadershipEnd | 'activation-failed'];
}

export class SetRunner extends EventEmitter<SetRunnerEvents> {
  private leadership: Leadership | undefined;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private stopping = false;
  role: SetRole = 'standby';
  /** Who serves the set, as this member sees it: for the ports every member runs (iSCSI portal groups). */
  readonly view: SetView;

  constructor(
    readonly set: FailoverSetConfig,
    private readonly member: string,
    private readonly arbiter: Arbiter,
    private readonly actions: SetActions,
    private readonly meta: Record<string, unknown> = {},
    private readonly retryMs = 500,
    /**
     * May this member campaign now? The Policy Manager's answer (only the named Secondary
     * does, the Alternates wait); read before each campaign and while it waits, which it
     * abandons when the answer turns to no. Without one, every member campaigns.
     */
    private readonly mayCampaign: () => boolean = ALWAYS,
  ) {
    super();
    this.view = new SetView(set.name, member, arbiter);
  }

  /** The fencing gate of the set's exports: per request, by the lease clock. */
  readonly mayServe = (): boolean => this.leadership?.isValid() ?? false;

  get token(): number | undefined {
    return this.leadership?.token;
  }

  /** The current Primary term, while this member holds it. */
  get current(): Leadership | undefined {
    return this.leadership;
  }

  start(): void {
    this.view.start();
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    // A member starts as a standby: drop whatever an earlier life left (a service address
    // survives a kill -9 of the process that added it).
    await this.actions.deactivate('start-up').catch((err: unknown) => log.warn({ err, set: this.set.name }, 'clean-up at start failed'));
    while (!this.stopping) {
      if (!this.mayCampaign()) {
        await sleep(GATE_POLL_MS, this.abort.signal);
        continue;
      }
      let leadership: Leadership;
      const campaign = new AbortController();
      const onStop = (): void => campaign.abort();
      this.abort.signal.addEventListener('abort', onStop);
      // Withdraw when the gate closes; without a gate nothing can close it (no timer to wake a standby).
      const watch =
        this.mayCampaign === ALWAYS
          ? undefined
          : setInterval(() => {
              if (!this.mayCampaign()) campaign.abort();
            }, GATE_POLL_MS);
      try {
        leadership = await this.arbiter.campaign(this.set.name, this.member, { meta: this.meta, signal: campaign.signal });
      } catch (err) {
        if (this.stopping) return;
        if (campaign.signal.aborted) {
          log.info({ set: this.set.name, member: this.member }, 'campaign withdrawn: another member is to take over');
          continue;
        }
        log.warn({ err, set: this.set.name }, 'campaign failed: trying again');
        await sleep(this.retryMs, this.abort.signal);
        continue;
      } finally {
        clearInterval(watch);
        this.abort.signal.removeEventListener('abort', onStop);
      }
      if (this.stopping) {
        await leadership.resign();
        return;
      }
      this.leadership = leadership;
      this.role = 'primary';
      log.info({ set: this.set.name, member: this.member, token: leadership.token, monoNs: monotonicNs() }, 'serving');
      let why: LeadershipEnd | 'activation-failed';
      this.view.self(leadership.token, false);
      try {
        await this.actions.activate(leadership);
        if (leadership.isValid()) this.view.self(leadership.token, true);
        why = await leadership.ended;
      } catch (err) {
        log.error({ err, set: this.set.name }, 'could not start serving: giving the role up');
        why = 'activation-failed';
        await leadership.resign();
      }
      // The gate closed the moment the leadership ended (isValid() is false from then on).
      log.info({ set: this.set.name, member: this.member, token: leadership.token, why, monoNs: monotonicNs() }, 'stopped serving');
      this.leadership = undefined;
      this.role = this.stopping ? 'stopped' : 'standby';
      this.emit('ended', why);
      this.view.selfEnded();
      await this.actions.deactivate(why).catch((err: unknown) => log.error({ err, set: this.set.name }, 'deactivate failed'));
      if (why !== 'resigned' && why !== 'closed') await sleep(this.retryMs, this.abort.signal);
    }
  }

  /** Give the Primary role up (the member keeps running and may be named again later). */
  async handOver(): Promise<void> {
    await this.leadership?.resign();
  }

  /** Planned stop: hand the role over (resign) so the next member takes it without a lease wait. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    this.view.stop();
    await this.leadership?.resign();
    await this.loop;
    this.role = 'stopped';
  }
}

/** Sleeps `ms`, or less if `signal` aborts (a stopping member does not wait out a retry). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}
