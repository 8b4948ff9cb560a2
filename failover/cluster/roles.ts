import { setTimeout as sleep } from 'node:timers/promises';
import { createHmac } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { logger } from '../../fabric/log.js';
import type { Arbiter } from '../arbitration/arbiter.js';
import type { BootContext, BootOutcome, ClusterServices, SetRoleInfo } from '../boot/phase.js';
import { ConfigError } from '../config/errors.js';
import type { FailoverSetConfig } from '../config/schema/cluster.js';
import type { MemberConfig } from '../config/schema/member-config.js';
import type { ConfigRecord } from '../config/store.js';
import { validateMemberConfig } from '../config/validate.js';
import { fencingBackends } from './backend-fencing.js';
import { sharedNothing } from './shared-nothing.js';
import { configChecksum } from '../config/canonical.js';
import { formatHostPort } from '../config/net-address.js';
import { PeerRequestError } from '../peer/messages.js';
import { ConfigSync, type SubmitResult } from '../sync/config-sync.js';
import { arbiterOf } from './arbiter-of.js';
import { ClusterRuntime, readClusterKey, type ClusterStatus } from './runtime.js';
import { SetRunner, type SetActions } from './set-runner.js';
import type { SetView } from './set-view.js';

const log = logger('cluster-roles');

export interface ClusterRolesEvents {
  /** A newer configuration generation is in the store: the member should run it. */
  config: [ConfigRecord];
}

/** The set actions of the cluster set: it serves nothing, its Primary writes the configuration. */
/** How long a starting member waits for the arbiter's configuration generations before it boots without them. */
const ARBITER_READ_WAIT_MS = 2000;
const NO_PORTS: SetActions = { activate: async () => undefined, deactivate: async () => undefined };

/**
 * A cluster member's part in its cluster: the arbiter, a runner per failover set it is in,
 * and — with management networks — the cluster services (Discovery, Policy Manager, Boot
 * Service, configuration sync) that decide who campaigns and keep the configuration
 * identical everywhere. Without networks the members only arbitrate (everyone campaigns).
 */
export class ClusterRoles extends EventEmitter<ClusterRolesEvents> implements BootOutcome, ClusterServices {
  readonly mode = 'cluster';
  readonly arbiter: Arbiter;
  readonly runners: readonly SetRunner[];
  readonly runtime: ClusterRuntime | undefined;
  readonly sync: ConfigSync | undefined;
  private readonly gates = new Map<string, () => boolean>();
  private timer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;

  private readonly member: string;
  /** The cluster's shared key (members with management networks have one). */
  private readonly key: Buffer | undefined;

  constructor(ctx: BootContext) {
    super();
    const { config, memberId } = ctx;
    this.member = memberId;
    const cluster = config.cluster;
    if (!cluster) throw new Error('cluster roles need a cluster section');
    if (!cluster.members.some((m) => m.id === memberId)) {
      throw new ConfigError('cluster.members', `this member (${memberId}) is not listed (members: ${cluster.members.map((m) => m.id).join(', ')}); give --member`);
    }
    this.arbiter = arbiterOf(cluster);
    let runtime: ClusterRuntime | undefined;
    this.key = cluster.networks.length > 0 ? readClusterKey(cluster.keyFile!) : undefined;
    if (cluster.networks.length > 0) {
      if (!ctx.store) throw new Error('a cluster with management networks needs the member store');
      const store = ctx.store;
      runtime = new ClusterRuntime({
        cluster,
        memberId,
        root: store.root,
        version: ctx.version ?? 'unknown',
        config: () => {
          const r = store.config.current();
          return r ? { generation: r.generation, checksum: r.checksum, schema: r.schemaVersion ?? 1 } : { generation: 0, checksum: '', schema: 0 };
        },
        devices: ctx.devices ?? (() => []),
        ...(ctx.api && { api: ctx.api }),
      });
    }
    this.runtime = runtime;
    const gateOf = (set: string): (() => boolean) | undefined => (runtime ? () => runtime.mayCampaign(set) : undefined);
    const runners: SetRunner[] = [];
    const { graph } = validateMemberConfig(ctx.config);
    for (const set of cluster.sets) {
      if (!set.members.includes(memberId)) continue;
      const actions = sharedNothing(fencingBackends(ctx.setPorts(set), set, ctx.config, graph, ctx.fabric), set, ctx.config, graph, ctx.fabric, memberId, this.arbiter);
      const runner = new SetRunner(set, memberId, this.arbiter, actions, { pid: process.pid }, 500, gateOf(set.name));
      runners.push(runner);
      for (const e of set.exports) this.gates.set(e, runner.mayServe);
    }
    if (runtime) {
      const clusterSet: FailoverSetConfig = { name: cluster.name, composition: 'n-way', members: cluster.members.map((m) => m.id), exports: [], nbd: { listen: [] } };
      // The cluster set's Primary writes the configuration: on taking the role it first
      // hands the arbiter's store the generations it holds that the store lacks (the first
      // one, stored from each member's file at its first start).
      const publish: SetActions = { ...NO_PORTS, activate: async (leadership) => void (await this.sync?.publish(leadership)) };
      const writer = new SetRunner(clusterSet, memberId, this.arbiter, publish, { pid: process.pid }, 500, gateOf(cluster.name));
      runners.push(writer);
      for (const r of runners) runtime.attach(r);
      this.sync = new ConfigSync({
        memberId,
        store: ctx.store!.config,
        arbiter: this.arbiter,
        discovery: runtime.discovery,
        validate: (doc) => validateMemberConfig(doc).config,
        leadership: () => writer.current,
        primary: () => runtime.primaryOf(cluster.name),
      });
      this.sync.on('updated', (record) => this.emit('config', record));
    }
    this.runners = runners;
  }

  /** With management networks, the services only (they would be left out of the outcome otherwise). */
  get cluster(): ClusterServices | undefined {
    return this.runtime ? this : undefined;
  }

  /** The per-request gate of an export: served only while this member is its set's Primary. */
  gate(exportName: string): () => boolean {
    return this.gates.get(exportName) ?? (() => false);
  }

  /** Before the ports open: the management networks (discovery, heartbeats, request handlers). */
  async startServices(): Promise<void> {
    await this.runtime?.start();
  }

  /** Once the ports are up: decide the boot type, then take part in the elections. */
  start(): void {
    const { runtime, sync } = this;
    for (const r of this.runners) r.start();
    if (runtime && sync) {
      // Catch up with the newest generation any member announces, before and after boot.
      this.timer = setInterval(() => void sync.catchUp(runtime.newestAnnounced()).catch((err: unknown) => log.warn({ err }, 'configuration catch-up failed')), 200);
      // Boot once the arbiter's generations are read (a returning member never takes a role
      // on an older one than the store holds), or after a bound: a slow etcd delays nothing more.
      const read = sync.fromArbiter().catch((err: unknown) => log.warn({ err }, 'could not read the configuration from the arbiter'));
      void Promise.race([read, sleep(ARBITER_READ_WAIT_MS, undefined, { ref: false })])
        .then(() => runtime.boot())
        .catch((err: unknown) => log.error({ err }, 'boot failed'));
    }
  }

  primaryOf(set: string): SetView | undefined {
    return this.runners.find((r) => r.set.name === set)?.view;
  }

  roles(): SetRoleInfo[] {
    return this.runners.map((r) => ({ set: r.set.name, role: r.role, ...(r.token !== undefined && { token: r.token }) }));
  }

  status(): ClusterStatus | undefined {
    return this.runtime?.status();
  }

  get memberId(): string {
    return this.member;
  }

  /**
   * Where `member`'s management API is reached from here: the URL it announces, or, when it
   * listens on every address (0.0.0.0, ::), its address on each management network it was
   * heard on lately, with the port it announces. None for an API on loopback: that one is
   * reached from its own host only (another member's 127.0.0.1 is not its). Undefined while
   * the member is not heard or announces no API.
   */
  apiOf(member: string): string[] | undefined {
    const peer = this.runtime?.discovery.peers.get(member);
    const announced = peer?.announcement?.api;
    if (!peer || announced === undefined || !URL.canParse(announced)) return undefined;
    const url = new URL(announced);
    if (/^(127\.|\[::1\]$|localhost$)/.test(url.hostname)) return [];
    if (!['0.0.0.0', '[::]'].includes(url.hostname)) return [url.origin];
    const heard = [...peer.networks.values()].filter((s) => s.lastHeardMs !== undefined);
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    return heard.length === 0 ? undefined : heard.map((s) => `${url.protocol}//${formatHostPort({ host: s.address.host, port })}`);
  }

  seal(text: string): string {
    if (!this.key) throw new PeerRequestError('ENOTSUP', 'sealing needs the cluster key (cluster.keyFile)');
    return createHmac('sha256', this.key).update(text).digest('hex');
  }

  /** Make `doc` the cluster's configuration (forwarded to the cluster set's Primary when needed). */
  submitConfig(doc: unknown, source: string): Promise<SubmitResult> {
    if (!this.sync) throw new PeerRequestError('ENOTSUP', 'configuration changes are synchronized only between members with management networks (cluster.networks)');
    return this.sync.submit(doc, source);
  }

  /**
   * A configuration file given at start is a change only when it differs from the last file
   * this member proposed: then, once booted and caught up, it is submitted to the cluster
   * set's Primary like any change. An unchanged file does not undo changes made since.
   */
  async proposeFile(config: MemberConfig, source: string): Promise<void> {
    const { runtime, sync } = this;
    if (!runtime || !sync) return;
    const checksum = configChecksum(config);
    if (runtime.record.lastFile() === checksum) return;
    await runtime.booted();
    if (runtime.status().boot === 'replacement') {
      // A replacement joins a cluster that runs: it takes the cluster's configuration, not its file.
      await runtime.record.setLastFile(checksum);
      log.info({ source }, 'replacement member: running the cluster\'s configuration, not the file it started with');
      return;
    }
    for (let attempt = 0; !this.stopping; attempt++) {
      try {
        const r = await sync.submit(config, source);
        await runtime.record.setLastFile(checksum);
        log.info({ generation: r.generation, changed: r.changed, by: r.appliedBy, source }, 'configuration file proposed to the cluster');
        return;
      } catch (err) {
        // No Primary yet (a cold start): ask again shortly.
        if (attempt % 20 === 0) log.info({ err: String(err) }, 'configuration file not applied yet: retrying');
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  /** An operator clears `member`'s quarantine (this member's, or a peer's through the management network). */
  clearQuarantine(member: string, by: string): Promise<boolean> {
    if (!this.runtime) throw new PeerRequestError('ENOTSUP', 'quarantine needs management networks (cluster.networks)');
    return this.runtime.clearQuarantine(by, member);
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.timer);
      // Hand every role over first (resign): the next Primary starts without a lease wait.
      await Promise.allSettled(this.runners.map((r) => r.stop()));
      await this.runtime?.stop();
      await this.arbiter.close();
    })();
    return this.stopping;
  }
}
