import { circuitBreaker, ConsecutiveBreaker, handleWhen, retry } from 'cockatiel';
import { Etcd3, GRPCDeadlineExceededError, isRecoverableError, Range, type IOperation, type Lease, type Namespace } from 'etcd3';
import { logger } from '../../fabric/log.js';
import {
  abortError,
  checkSetName,
  NotPrimaryError,
  type Arbiter,
  type GuardedWrite,
  type CampaignOptions,
  type LeaderInfo,
  type Leadership,
  type LeadershipEnd,
} from './arbiter.js';
import { LeaseClock, now } from './lease-clock.js';
import { KeepAlive } from './keepalive.js';

const log = logger('arbiter-etcd');

export interface EtcdArbiterOptions {
  /** Client URLs of the etcd cluster, e.g. ['http://10.0.1.1:2379', …]. */
  readonly endpoints: readonly string[];
  /** The cluster's name: every key lives under `blockgate/<cluster>/`. */
  readonly cluster: string;
  /** Lease TTL in whole seconds (etcd's unit; the etcd3 client's default of 60 s is far too long). */
  readonly ttlSeconds?: number;
  /** The Primary stops serving this long before its lease could run out. */
  readonly fenceMarginMs?: number;
  /** How long to wait for an etcd endpoint to answer a connection. */
  readonly dialTimeoutMs?: number;
}

export const DEFAULT_ETCD_TTL_SECONDS = 2;

/** A node that refused, reset, or (a cut link: packets dropped) never answered in time. */
function unreachable(err: Error): boolean {
  return isRecoverableError(err) || err instanceof GRPCDeadlineExceededError;
}
export const DEFAULT_FENCE_MARGIN_MS = 600;

interface CampaignValue {
  readonly member: string;
  readonly meta: Record<string, unknown>;
}

/**
 * Election per failover set on etcd, the classic recipe: every campaigner puts a key under
 * `election/<set>/` attached to its own lease; the key with the lowest create revision is the
 * Primary, and that revision is its fencing token (etcd revisions only grow, so a later
 * Primary always has a larger one). A waiting campaigner re-checks when a key under the
 * prefix is deleted. The Primary fences itself by its own monotonic clock (`LeaseClock`)
 * rather than waiting for etcd to tell it: a paused process hears nothing until it wakes.
 */
export class EtcdArbiter implements Arbiter {
  readonly kind = 'etcd';
  private readonly client: Etcd3;
  private readonly ns: Namespace;
  private readonly ttlSeconds: number;
  private readonly marginMs: number;
  private readonly endpoints: readonly string[];
  private readonly held = new Set<EtcdLeadership>();
  private readonly leases = new Set<Lease>();
  private closed = false;

  constructor(options: EtcdArbiterOptions) {
    checkSetName(options.cluster);
    this.ttlSeconds = options.ttlSeconds ?? DEFAULT_ETCD_TTL_SECONDS;
    this.marginMs = options.fenceMarginMs ?? DEFAULT_FENCE_MARGIN_MS;
    if (!Number.isInteger(this.ttlSeconds) || this.ttlSeconds < 1) throw new RangeError(`etcd lease TTL must be a whole number of seconds ≥ 1 (got ${this.ttlSeconds})`);
    if (!(this.marginMs > 0 && this.marginMs < this.ttlSeconds * 1000)) {
      throw new RangeError(`fence margin ${this.marginMs} ms must be between 0 and the lease TTL (${this.ttlSeconds} s)`);
    }
    this.endpoints = options.endpoints.map((e) => e.replace(/\/+$/, ''));
    const callMs = Math.max(500, (this.ttlSeconds * 1000) / 2);
    this.client = new Etcd3({
      hosts: [...options.endpoints],
      dialTimeout: options.dialTimeoutMs ?? 1000,
      // A cut link drops packets silently: without a deadline a call to an unreachable node
      // waits forever instead of failing over to another endpoint. Streams (watches, lease
      // keep-alives) are long-lived and get no deadline; HTTP/2 pings find their dead
      // connections (5 s is the least etcd accepts by default).
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + callMs }),
      grpcOptions: {
        'grpc.keepalive_time_ms': 5000,
        'grpc.keepalive_timeout_ms': 1000,
        'grpc.keepalive_permit_without_calls': 1,
        // gRPC's reconnect backoff grows to two minutes: a node back from a cut link would stay
        // unused long after it answers again.
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 1000,
      },
      // The client's default breaker shuts a node out for 5 s after 3 failures: during an etcd
      // leader election every node fails a few calls, so all would be shut out at once for
      // longer than a lease. Ours opens for a fraction of the lease, and a call that failed
      // on one node is tried once on another.
      faultHandling: {
        host: () => circuitBreaker(handleWhen(unreachable), { halfOpenAfter: Math.min(500, callMs / 2), breaker: new ConsecutiveBreaker(2) }),
        global: retry(handleWhen(unreachable), { maxAttempts: 2 }),
      },
    });
    this.ns = this.client.namespace(`blockgate/${options.cluster}/`);
  }

  async campaign(set: string, member: string, options: CampaignOptions = {}): Promise<Leadership> {
    checkSetName(set);
    const value: CampaignValue = { member, meta: options.meta ?? {} };
    for (;;) {
      this.checkOpen(options.signal);
      const lease = this.ns.lease(this.ttlSeconds, { autoKeepAlive: false });
      this.leases.add(lease);
      const grantSentAt = now();
      // Four renewals per TTL, any of which may be lost: the fence margin covers the gaps.
      let renewals: KeepAlive | undefined;
      try {
        const leaseId = await lease.grant();
        renewals = new KeepAlive(this.endpoints, leaseId, (this.ttlSeconds * 1000) / 4, grantSentAt);
        const key = `election/${set}/${leaseId}`;
        const put = await lease.put(key).value(JSON.stringify(value)).exec();
        // A fresh key's create revision is the revision of the put that made it.
        const token = Number(put.header.revision);
        log.info({ set, member, token }, 'campaigning');
        const elected = await this.waitForTurn(set, token, renewals, options.signal);
        if (elected) {
          const leadership = new EtcdLeadership(this, set, member, token, key, lease, renewals, this.ttlSeconds * 1000, this.marginMs);
          this.held.add(leadership);
          // Record the token so `lastToken` survives the key (and so a reader can check it only grows).
          await this.guardedPut(leadership, `tokens/${set}`, String(token));
          log.info({ set, member, token }, 'elected: Primary');
          return leadership;
        }
        log.warn({ set, member }, 'campaign lease lost while waiting: campaigning again');
      } catch (err) {
        renewals?.stop();
        this.leases.delete(lease);
        await lease.revoke().catch(() => {});
        if (this.closed || options.signal?.aborted) throw this.closed ? new Error('arbiter closed') : abortError(options.signal!);
        if (err instanceof NotPrimaryError) continue;
        log.warn({ err, set }, 'campaign failed: retrying');
        await new Promise((r) => setTimeout(r, 250));
        continue;
      }
      renewals.stop();
      this.leases.delete(lease);
      lease.release();
    }
  }

  /** True once our key is the oldest under the set's prefix; false if our key (lease) is gone. */
  private async waitForTurn(set: string, token: number, renewals: KeepAlive, signal: AbortSignal | undefined): Promise<boolean> {
    const prefix = `election/${set}/`;
    const watcher = await this.ns.watch().prefix(prefix).only('delete').create();
    let wake: () => void = () => {};
    const poke = (): void => wake();
    watcher.on('delete', poke);
    const unsubscribe = renewals.onLost(poke);
    signal?.addEventListener('abort', poke);
    try {
      for (;;) {
        this.checkOpen(signal);
        if (renewals.lost) return false;
        const range = await this.ns.getAll().prefix(prefix).sort('Create', 'Ascend').exec();
        const revisions = range.kvs.map((kv) => Number(kv.create_revision));
        if (!revisions.includes(token)) return false;
        if (revisions[0] === token) return true;
        // Sleep until a key goes away (the holder's lease expired or it resigned), or re-check
        // now and then in case a delete was missed while the watch reconnected.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(250, (this.ttlSeconds * 1000) / 4));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    } finally {
      signal?.removeEventListener('abort', poke);
      unsubscribe();
      await watcher.cancel().catch(() => {});
    }
  }

  async leader(set: string): Promise<LeaderInfo | undefined> {
    checkSetName(set);
    const range = await this.ns.getAll().prefix(`election/${set}/`).sort('Create', 'Ascend').limit(1).exec();
    const kv = range.kvs[0];
    if (!kv) return undefined;
    const value = JSON.parse(kv.value.toString()) as CampaignValue;
    return { member: value.member, token: Number(kv.create_revision), meta: value.meta };
  }

  async lastToken(set: string): Promise<number> {
    const raw = await this.ns.get(`tokens/${checkSetName(set)}`).string();
    return raw === null ? 0 : Number(raw);
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.ns.get(key).string()) ?? undefined;
  }

  async guardedPut(leadership: Leadership, key: string, value: string): Promise<void> {
    return this.guardedWrite(leadership, { puts: [[key, value]] });
  }

  async guardedWrite(leadership: Leadership, write: GuardedWrite): Promise<void> {
    if (!(leadership instanceof EtcdLeadership) || !leadership.isValid()) {
      throw new NotPrimaryError(leadership.set, 'this leadership has ended');
    }
    const ops: IOperation[] = write.puts.map(([key, value]) => this.ns.put(key).value(value));
    if (write.deleteRange) ops.push(this.ns.delete().range(new Range(write.deleteRange.from, write.deleteRange.to)));
    // The compare is the fencing: the writes land only while our campaign key is still the
    // one created at our token's revision, whatever our clock believes.
    const result = await this.ns
      .if(leadership.key, 'Create', '==', leadership.token)
      .then(...ops)
      .commit();
    if (!result.succeeded) {
      leadership.end('superseded');
      throw new NotPrimaryError(leadership.set, `campaign key of token ${leadership.token} is gone`);
    }
  }

  async list(prefix: string): Promise<Array<[string, string]>> {
    const all = await this.ns.getAll().prefix(prefix).sort('Key', 'Ascend').strings();
    return Object.entries(all).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Called by a leadership as it ends: give its key up so the next campaigner need not wait for the TTL. */
  async release(l: EtcdLeadership, lease: Lease, revoke: boolean): Promise<void> {
    this.held.delete(l);
    this.leases.delete(lease);
    if (revoke) await lease.revoke().catch((err: unknown) => log.warn({ err, set: l.set }, 'lease revoke failed (it will expire)'));
    else lease.release();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const l of [...this.held]) l.end('closed');
    await Promise.allSettled([...this.leases].map((lease) => lease.revoke()));
    this.client.close();
  }

  private checkOpen(signal: AbortSignal | undefined): void {
    if (this.closed) throw new Error('arbiter closed');
    if (signal?.aborted) throw abortError(signal);
  }
}

class EtcdLeadership implements Leadership {
  readonly ended: Promise<LeadershipEnd>;
  private settle!: (why: LeadershipEnd) => void;
  private over = false;
  private readonly clock: LeaseClock;

  constructor(
    private readonly arbiter: EtcdArbiter,
    readonly set: string,
    readonly member: string,
    readonly token: number,
    readonly key: string,
    private readonly lease: Lease,
    private readonly renewals: KeepAlive,
    ttlMs: number,
    marginMs: number,
  ) {
    this.ended = new Promise((resolve) => (this.settle = resolve));
    this.clock = new LeaseClock(ttlMs, marginMs, () => this.end('lease-expired'), renewals.lastConfirmedSend);
    renewals.onConfirmed = (sentAt) => this.clock.renewed(sentAt);
    renewals.onLost(() => this.end('lease-lost'));
  }

  isValid(): boolean {
    return !this.over && this.clock.isValid();
  }

  async resign(): Promise<void> {
    this.end('resigned');
    await this.ended;
  }

  end(why: LeadershipEnd): void {
    if (this.over) return;
    this.over = true;
    this.clock.stop();
    this.renewals.stop();
    const level = why === 'resigned' || why === 'closed' ? 'info' : 'warn';
    log[level]({ set: this.set, member: this.member, token: this.token, why }, 'no longer Primary');
    this.settle(why);
    // Resigning revokes the lease so the next campaigner is elected at once; a fenced
    // holder revokes too (harmless if etcd already expired it).
    void this.arbiter.release(this, this.lease, true);
  }
}
