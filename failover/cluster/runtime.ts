import { readFileSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { RootDatabase } from 'lmdb';
import type { BlockDevice } from '../../fabric/device.js';
import { logger } from '../../fabric/log.js';
import { ConfigError } from '../config/errors.js';
import type { ClusterConfig } from '../config/schema/cluster.js';
import { CONFIG_SCHEMA_VERSION } from '../config/schema/member-config.js';
import { DiscoveryService } from '../discovery/service.js';
import { PEER_PROTOCOL, PEER_PROTOCOL_MIN, PeerRequestError, type Announcement, type BootType, type MemberRole } from '../peer/messages.js';
import { Alarms, type Alarm } from '../policy/alarms.js';
import { firstRefusal, protocolVerdict, schemaVerdict, type Verdict, type Versions } from '../policy/compatibility.js';
import { EventLoopMonitor } from '../policy/event-loop.js';
import { HealthMonitor, type PeerHealthStatus } from '../policy/health.js';
import { Pinger } from '../policy/icmp.js';
import { runSelfTest, type SelfTestReport } from '../policy/self-test.js';
import { SetPolicy, type Candidate, type Decision } from '../policy/set-policy.js';
import { MemberRecord, type FailureEntry, type Quarantine, type StartInfo } from './member-record.js';
import type { SetRunner } from './set-runner.js';

const log = logger('cluster');

/** The boot type this process decided per member id: a restart inside the process (a new configuration) keeps it. */
const decided = new Map<string, BootType>();
/** How often a member whose self-test failed runs it again. */
const SELF_RETEST_MS = 3000;

/** The configuration this member runs, as announced. */
export interface RunningConfig {
  readonly generation: number;
  readonly checksum: string;
  readonly schema: number;
}

export interface ClusterRuntimeOptions {
  readonly cluster: ClusterConfig;
  readonly memberId: string;
  /** The member store: incarnation, failures and quarantine live in it. */
  readonly root: RootDatabase;
  /** Software version, announced to peers. */
  readonly version: string;
  /** The configuration generation this member runs now. */
  readonly config: () => RunningConfig;
  /** The devices the self-test reads. */
  readonly devices: () => readonly BlockDevice[];
  /** This member's management API address, announced for forwarding. */
  readonly api?: () => string | undefined;
  /** Versions this member claims (default: this code's); a rolling-upgrade test sets them. */
  readonly versions?: Versions;
}

/** Versions this code speaks and reads; `BLOCKGATE_ANNOUNCE_VERSIONS` (JSON) overrides them, for upgrade tests. */
export function ownVersions(env: NodeJS.ProcessEnv = process.env): Versions {
  const fallback: Versions = { protocol: [PEER_PROTOCOL_MIN, PEER_PROTOCOL], schema: [1, CONFIG_SCHEMA_VERSION] };
  const text = env.BLOCKGATE_ANNOUNCE_VERSIONS;
  if (!text) return fallback;
  const v = JSON.parse(text) as Partial<Versions>;
  const pair = (r: unknown): r is [number, number] => Array.isArray(r) && r.length === 2 && r.every((n) => Number.isInteger(n) && n >= 0);
  if (!pair(v.protocol) || !pair(v.schema)) throw new ConfigError('BLOCKGATE_ANNOUNCE_VERSIONS', 'must be {"protocol":[MIN,MAX],"schema":[MIN,MAX]}');
  log.warn({ versions: v }, 'announcing versions from BLOCKGATE_ANNOUNCE_VERSIONS');
  return { protocol: v.protocol, schema: v.schema };
}

/** The shared key: at least 32 bytes, surrounding white space ignored (one file copied to every member). */
export function readClusterKey(path: string): Buffer {
  let key: Buffer;
  try {
    key = Buffer.from(readFileSync(path, 'utf8').trim(), 'utf8');
  } catch (err) {
    throw new ConfigError('cluster.keyFile', `cannot read ${path}: ${(err as Error).message}`);
  }
  if (key.length < 32) throw new ConfigError('cluster.keyFile', `${path} holds ${key.length} bytes: use at least 32 (e.g. head -c 32 /dev/urandom | base64 > ${path})`);
  if ((statSync(path).mode & 0o004) !== 0) log.warn({ path }, 'the cluster key file is readable by everyone: chmod 600 it');
  return key;
}

export interface SetStatus {
  readonly name: string;
  readonly role: MemberRole;
  readonly campaigning: boolean;
  readonly secondary?: string;
  readonly why?: string;
  readonly token?: number;
}

export interface PeerStatus extends PeerHealthStatus {
  readonly incarnation?: number;
  readonly version?: string;
  readonly state?: string;
  readonly generation?: number;
  readonly checksum?: string;
  readonly roles?: Record<string, MemberRole>;
  readonly compatible: boolean;
  readonly refused?: string;
  readonly quarantined?: boolean;
}

export interface ClusterStatus {
  readonly name: string;
  readonly member: string;
  readonly incarnation: number;
  readonly boot: BootType | 'booting';
  readonly version: string;
  readonly versions: Versions;
  readonly eligible: boolean;
  readonly refused?: string;
  readonly quarantine?: Quarantine;
  readonly failures: readonly FailureEntry[];
  readonly icmp: string;
  readonly networks: ReadonlyArray<{ name: string; address: string; heartbeat: string; discovery: string }>;
  readonly peers: readonly PeerStatus[];
  readonly sets: readonly SetStatus[];
  readonly alarms: readonly Alarm[];
  readonly alarmHistory: readonly Alarm[];
}

/**
 * A cluster member's services while it runs: Discovery on every management network, the
 * Policy Manager's health monitoring (heartbeats, ICMP echo, self-tests over another
 * network, alarms), compatibility checks, the failure limit, and the role policy of each
 * failover set this member is in. The set runners (and the arbiter) do the electing; this
 * decides who may campaign and what every member announces.
 */
export class ClusterRuntime {
  readonly alarms: Alarms;
  readonly discovery: DiscoveryService;
  readonly health: HealthMonitor;
  readonly record: MemberRecord;
  readonly versions: Versions;
  private readonly pinger: Pinger;
  private readonly loop: EventLoopMonitor;
  private readonly policies = new Map<string, SetPolicy>();
  private readonly runners = new Map<string, SetRunner>();
  private readonly decisions = new Map<string, Decision>();
  private timer: NodeJS.Timeout | undefined;
  private started: StartInfo | undefined;
  private bootType: BootType | undefined;
  private state: Announcement['state'] = 'booting';
  private selfTestFailed: string | undefined;
  /** performance.now() after which a member whose self-test failed runs it again (undefined: one is running). */
  private retestAtMs: number | undefined = 0;
  private forming = false;
  private quarantined: Quarantine | undefined;

  constructor(private readonly options: ClusterRuntimeOptions) {
    const { cluster, memberId } = options;
    if (cluster.networks.length === 0) throw new Error('the cluster runtime needs management networks');
    this.versions = options.versions ?? ownVersions();
    this.alarms = new Alarms(cluster.health.permanentMs);
    this.record = new MemberRecord(options.root, memberId, cluster.health.failureLimit);
    this.discovery = new DiscoveryService({ cluster, memberId, key: readClusterKey(cluster.keyFile!), announcement: () => this.announcement() });
    this.loop = new EventLoopMonitor(cluster.health.silenceMs / 2);
    this.pinger = new Pinger(() => this.pingTargets(), cluster.health.pingIntervalMs);
    this.health = new HealthMonitor({
      discovery: this.discovery,
      networks: cluster.networks,
      health: cluster.health,
      alarms: this.alarms,
      pinger: this.pinger,
      loop: this.loop,
      onMemberFailure: (peer, reason) => log.warn({ peer, reason }, 'member failure'),
    });
    const graceMs = 3 * cluster.health.silenceMs + 2000;
    // The cluster set (every member; its Primary writes the configuration) and the failover sets this member is in.
    this.policies.set(cluster.name, new SetPolicy(cluster.name, cluster.members.map((m) => m.id), memberId, graceMs));
    for (const set of cluster.sets) {
      if (!set.members.includes(memberId)) continue;
      const groups = set.children?.map((c) => c.members);
      this.policies.set(set.name, new SetPolicy(set.name, set.members, memberId, graceMs, groups));
    }
  }

  /** Open the networks and start monitoring; the member is `booting` (no role) until `boot()` returns. */
  async start(): Promise<StartInfo> {
    this.started = await this.record.start();
    this.quarantined = this.record.quarantine();
    this.discovery.handle('selftest', () => this.selfTest());
    this.discovery.handle('quarantine.clear', async (body, from) => {
      const by = typeof (body as { by?: unknown })?.by === 'string' ? (body as { by: string }).by : from.member;
      return { cleared: await this.clearQuarantine(by) };
    });
    this.loop.start();
    await this.discovery.start();
    this.pinger.start();
    this.health.start();
    this.timer = setInterval(() => this.tick(), Math.min(100, this.options.cluster.health.heartbeatMs));
    return this.started;
  }

  /**
   * The Boot Service's decision: restart or replacement when some member already holds a
   * role, else a cold start of the whole set, which waits for a quorum of members first.
   */
  async boot(): Promise<BootType> {
    const { cluster } = this.options;
    // Long enough to hear every running member on some network.
    await this.until(() => this.livePeers().length >= cluster.members.length - 1, 2 * cluster.health.silenceMs);
    // The cluster runs already: a live peer has booted (not in a cold start of its own) and holds a role.
    const established = (): boolean =>
      this.livePeers().some((p) => p.announcement!.state === 'ready' && p.announcement!.forming !== true && Object.values(p.announcement!.roles).some((r) => r !== 'none'));
    // A set that formed in a cold start still going on (not all members joined yet) is joined as a cold start too.
    const forming = (): boolean => this.livePeers().some((p) => p.announcement?.forming === true);
    const joining = (): BootType => (this.started!.fresh || this.started!.previousId !== undefined ? 'replacement' : 'restart');
    let type: BootType;
    const before = decided.get(this.options.memberId);
    if (before !== undefined) type = before;
    else if (established() && !forming()) type = joining();
    else {
      const quorum = (): boolean => this.livePeers().length + 1 >= cluster.boot.quorum || established();
      if (!quorum()) log.info({ quorum: cluster.boot.quorum, seen: this.livePeers().map((p) => p.id) }, 'cold start: waiting for a quorum of members');
      if (!(await this.until(quorum, cluster.boot.coldStartWaitMs))) {
        log.warn({ quorum: cluster.boot.quorum, waitedMs: cluster.boot.coldStartWaitMs }, 'cold start: no quorum within the wait; going on (the arbiter still allows one Primary)');
      }
      // Peers heard late (a loaded host, discovery still going on) may show the cluster runs already.
      type = established() && !forming() ? joining() : 'cold';
    }
    this.bootType = type;
    decided.set(this.options.memberId, type);
    this.state = 'ready';
    // Only a cold start of this process forms the set: a restart inside it (a new configuration) joins what runs.
    if (type === 'cold' && before === undefined) {
      this.forming = true;
      // The cold start ends once every member has decided its boot type, or after the cold-start wait.
      void this.until(() => this.livePeers().filter((p) => p.announcement!.state === 'ready').length >= cluster.members.length - 1, cluster.boot.coldStartWaitMs).then(() => {
        this.forming = false;
      });
    }
    log.info({ member: this.options.memberId, boot: type, incarnation: this.started!.incarnation, peers: this.livePeers().map((p) => p.id) }, 'boot type decided');
    return type;
  }

  /** The set runner of `set` on this member, whose campaigns this runtime gates. */
  attach(runner: SetRunner): void {
    this.runners.set(runner.set.name, runner);
    // A fence is a failure of this member, counted against its failure limit.
    runner.on('ended', (why) => {
      if (why === 'lease-expired' || why === 'lease-lost' || why === 'superseded') void this.failed('fenced', `${runner.set.name}: ${why}`);
    });
  }

  /** Resolves once the boot type is decided (the member takes part). */
  booted(): Promise<void> {
    return this.until(() => this.state === 'ready', Infinity).then(() => undefined);
  }

  /** Who is Primary of `set` now, as this member sees it (itself included). */
  primaryOf(set: string): string | undefined {
    if (this.runners.get(set)?.role === 'primary') return this.options.memberId;
    return this.livePeers().find((p) => p.announcement!.roles[set] === 'primary')?.id;
  }

  /** The newest configuration generation a live peer announces, and who. */
  newestAnnounced(): { generation: number; from: string | undefined } {
    let newest: { generation: number; from: string | undefined } = { generation: 0, from: undefined };
    for (const p of this.livePeers()) if (p.announcement!.generation > newest.generation) newest = { generation: p.announcement!.generation, from: p.id };
    return newest;
  }

  /** May this member campaign for `set` now? (The runner's gate.) */
  mayCampaign(set: string): boolean {
    return this.decisions.get(set)?.campaign ?? false;
  }

  announcement(): Announcement {
    const config = this.options.config();
    const refused = this.refusal();
    const roles: Record<string, MemberRole> = {};
    const secondaries: Record<string, string> = {};
    for (const [set, d] of this.decisions) {
      roles[set] = d.role;
      if (d.secondary !== undefined) secondaries[set] = d.secondary;
    }
    const api = this.options.api?.();
    return {
      cluster: this.options.cluster.name,
      id: this.options.memberId,
      incarnation: this.started?.incarnation ?? 1,
      version: this.options.version,
      protocol: [...this.versions.protocol],
      schema: [...this.versions.schema],
      generation: config.generation,
      checksum: config.checksum,
      configSchema: config.schema,
      state: this.state,
      ...(this.bootType && { boot: this.bootType }),
      ...(this.forming && { forming: true }),
      roles,
      ...(Object.keys(secondaries).length > 0 && { secondaries }),
      ...(refused !== undefined && { refused }),
      ...(this.quarantined && { quarantined: true }),
      ...(api !== undefined && { api }),
      eventLoopMs: Math.round(this.loop.recentMaxMs()),
    };
  }

  /** Run the self-test (a peer asked, or this member doubts itself); a failure is counted and gives roles up. */
  async selfTest(): Promise<SelfTestReport> {
    const { cluster, memberId } = this.options;
    const report = await runSelfTest(
      { member: memberId, devices: this.options.devices, touchStore: () => this.record.touch(), eventLoopMs: () => this.loop.recentMaxMs() },
      { timeoutMs: cluster.health.selfTestTimeoutMs, eventLoopLimitMs: cluster.health.eventLoopLimitMs },
    );
    if (!report.ok) {
      const failed = report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail ?? 'failed'}`).join('; ');
      if (this.selfTestFailed === undefined) {
        this.selfTestFailed = failed;
        log.error({ failed }, 'self-test failed: giving every role up');
        this.quarantined = await this.record.fail('self-test', failed);
      }
    } else if (this.selfTestFailed !== undefined) {
      log.info('self-test passes again');
      this.selfTestFailed = undefined;
    }
    return report;
  }

  /** An operator's clearance of this member's quarantine, or of a peer's (forwarded to it). */
  async clearQuarantine(by: string, member = this.options.memberId): Promise<boolean> {
    if (member !== this.options.memberId) {
      if (!this.options.cluster.members.some((m) => m.id === member)) throw new PeerRequestError('ENOENT', `no member ${JSON.stringify(member)} in cluster ${this.options.cluster.name}`);
      const answer = (await this.discovery.request(member, 'quarantine.clear', { by }, { timeoutMs: 5000 })) as { cleared: boolean };
      return answer.cleared;
    }
    const cleared = await this.record.clearQuarantine(by);
    this.quarantined = undefined;
    this.alarms.clear('quarantined', undefined, member, 'cleared by an operator');
    return cleared;
  }

  /** A failure of this member the set runners saw (a fence): counted against its limit. */
  async failed(kind: 'fenced', detail: string): Promise<void> {
    this.quarantined = await this.record.fail(kind, detail);
  }

  status(): ClusterStatus {
    const { cluster, memberId } = this.options;
    const refused = this.refusal();
    const health = new Map(this.health.status().map((h) => [h.id, h]));
    return {
      name: cluster.name,
      member: memberId,
      incarnation: this.started?.incarnation ?? 0,
      boot: this.bootType ?? 'booting',
      version: this.options.version,
      versions: this.versions,
      eligible: this.eligible(),
      ...(refused !== undefined && { refused }),
      ...(this.quarantined && { quarantine: this.quarantined }),
      failures: this.record.failures(),
      icmp: this.pinger.unavailable ? `unavailable: ${this.pinger.unavailable}` : 'ok',
      networks: this.discovery.locals.map((l) => ({
        name: l.network.name,
        address: `${l.local.address} (${l.local.interface}) port ${l.port}`,
        heartbeat: l.network.heartbeat.protocol,
        discovery: l.network.discovery === 'mdns' ? 'mdns' : 'seeds',
      })),
      peers: this.discovery.peers.list().map((p) => {
        const a = p.announcement;
        const verdict = a ? this.peerVerdict(a) : { ok: true as const };
        return {
          ...(health.get(p.id) ?? { id: p.id, health: 'alive' as const, networks: {} }),
          ...(a && { incarnation: a.incarnation, version: a.version, state: a.state, generation: a.generation, checksum: a.checksum, roles: a.roles }),
          compatible: verdict.ok,
          ...(!verdict.ok ? { refused: verdict.reason } : a?.refused !== undefined ? { refused: a.refused } : {}),
          ...(a?.quarantined && { quarantined: true }),
        };
      }),
      sets: [...this.policies.keys()].map((name) => {
        const d = this.decisions.get(name);
        const token = this.runners.get(name)?.token;
        return {
          name,
          role: d?.role ?? 'none',
          campaigning: d?.campaign ?? false,
          ...(d?.secondary !== undefined && { secondary: d.secondary }),
          ...(d?.why !== undefined && { why: d.why }),
          ...(token !== undefined && { token }),
        };
      }),
      alarms: this.alarms.list(),
      alarmHistory: this.alarms.history(),
    };
  }

  /** A planned stop: say so (peers do not count it as a failure), then close everything. */
  async stop(): Promise<void> {
    this.state = 'stopping';
    this.discovery.beat();
    clearInterval(this.timer);
    this.health.stop();
    this.pinger.stop();
    this.loop.stop();
    await this.discovery.stop();
    await this.record.stopped();
  }

  /** Recompute every set's decision; a Primary that may no longer hold its role hands it over. */
  private tick(): void {
    this.retestIfFailed();
    for (const [name, policy] of this.policies) {
      const runner = this.runners.get(name);
      const holding = runner?.role === 'primary';
      const d = policy.decide(this.self(name), this.candidates(name), holding);
      const before = this.decisions.get(name);
      this.decisions.set(name, d);
      if (before?.role !== d.role || before?.secondary !== d.secondary) {
        log.info({ set: name, role: d.role, secondary: d.secondary, why: d.why }, 'role in set');
      }
      if (holding && !d.campaign) {
        log.warn({ set: name, refused: this.refusal() }, 'no longer eligible: handing the Primary role over');
        void runner?.handOver();
      }
    }
    this.alarmStates();
  }

  /**
   * A failed self-test takes every role away until one passes; peers ask for one only when a
   * network goes silent, so a member that failed (a stall on a loaded host, a slow device)
   * tests itself again every few seconds and becomes eligible once it passes.
   */
  private retestIfFailed(): void {
    if (this.selfTestFailed === undefined || this.retestAtMs === undefined || performance.now() < this.retestAtMs) return;
    this.retestAtMs = undefined;
    void this.selfTest()
      .catch((err: unknown) => log.warn({ err }, 'self-test could not run'))
      .finally(() => {
        this.retestAtMs = performance.now() + SELF_RETEST_MS;
      });
  }

  private alarmStates(): void {
    const { memberId } = this.options;
    if (this.quarantined) this.alarms.raise('quarantined', { peer: memberId, message: `${memberId} is quarantined: ${this.quarantined.reason}` });
    for (const p of this.discovery.peers.list()) {
      const a = p.announcement;
      if (!a) continue;
      const v = this.peerVerdict(a);
      if (!v.ok) this.alarms.raise('incompatible', { peer: p.id, message: v.reason });
      else this.alarms.clear('incompatible', undefined, p.id, 'compatible now');
      if (a.quarantined) this.alarms.raise('quarantined', { peer: p.id, message: `${p.id} is quarantined at its failure limit` });
      else this.alarms.clear('quarantined', undefined, p.id, 'cleared');
    }
  }

  private livePeers() {
    return this.discovery.peers.list().filter((p) => p.announcement && this.health.isAlive(p.id) && p.announcement.state !== 'stopping');
  }

  /** The newest configuration any live member runs (generation, schema). */
  private newestConfig(): { generation: number; schema: number } {
    const mine = this.options.config();
    let newest = { generation: mine.generation, schema: mine.schema };
    for (const p of this.livePeers()) {
      const a = p.announcement!;
      if (a.generation > newest.generation) newest = { generation: a.generation, schema: a.configSchema };
    }
    return newest;
  }

  private peerVerdict(a: Announcement): Verdict {
    const newest = this.newestConfig();
    const theirs: Versions = { protocol: a.protocol as [number, number], schema: a.schema as [number, number] };
    const v = protocolVerdict(this.options.memberId, this.versions, a.id, theirs);
    if (!v.ok) return v;
    return schemaVerdict(a.id, theirs, newest.schema, newest.generation);
  }

  /** Why this member may take no role now, if it may not. */
  private refusal(): string | undefined {
    if (this.quarantined) return `quarantined: ${this.quarantined.reason} (clear it with: blockgate cluster clear-quarantine ${this.options.memberId})`;
    if (this.selfTestFailed !== undefined) return `self-test failed: ${this.selfTestFailed}`;
    const newest = this.newestConfig();
    const verdicts: Verdict[] = [schemaVerdict(this.options.memberId, this.versions, newest.schema, newest.generation)];
    // Refused when it cannot talk to a member holding a role, or to most of the live ones.
    const live = this.livePeers();
    const against = live.map((p) => ({ p, v: protocolVerdict(this.options.memberId, this.versions, p.id, { protocol: p.announcement!.protocol as [number, number], schema: p.announcement!.schema as [number, number] }) }));
    const holder = against.find(({ p, v }) => !v.ok && Object.values(p.announcement!.roles).some((r) => r === 'primary'));
    if (holder) verdicts.push(holder.v);
    const bad = against.filter(({ v }) => !v.ok);
    if (bad.length > 0 && bad.length * 2 > live.length) verdicts.push(bad[0]!.v);
    return firstRefusal(verdicts);
  }

  private eligible(): boolean {
    if (this.state !== 'ready' || this.refusal() !== undefined) return false;
    return this.options.config().generation >= this.newestConfig().generation;
  }

  private self(set: string): Candidate {
    return { id: this.options.memberId, live: true, eligible: this.eligible(), generation: this.options.config().generation, role: this.decisions.get(set)?.role, secondary: undefined };
  }

  /** Every peer as the policy of `set` sees it. */
  private candidates(set: string): Candidate[] {
    const newest = this.newestConfig();
    return this.discovery.peers.list().flatMap((p) => {
      const a = p.announcement;
      if (!a) return [];
      const fine = a.state === 'ready' && a.refused === undefined && !a.quarantined && this.peerVerdict(a).ok;
      return [
        {
          id: p.id,
          live: this.health.isAlive(p.id) && a.state !== 'stopping',
          eligible: fine && a.generation >= newest.generation,
          lagging: fine && a.generation < newest.generation,
          generation: a.generation,
          role: a.roles[set],
          secondary: a.secondaries?.[set],
        },
      ];
    });
  }

  private pingTargets(): string[] {
    const out = new Set<string>();
    for (const p of this.discovery.peers.list()) for (const s of p.networks.values()) out.add(s.address.host);
    return [...out];
  }

  private async until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!condition()) {
      if (performance.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
    return true;
  }
}
