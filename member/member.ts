import type { BlockDevice } from '../fabric/device.js';
import { FencedLayer } from '../fabric/layers/fenced.js';
import { ReplicatedVolume } from '../fabric/layers/replicated-volume.js';
import { logger } from '../fabric/log.js';
import { FabricSwitch } from '../fabric/switch.js';
import type { BootOutcome, BootPhase } from '../failover/boot/phase.js';
import { standaloneBoot } from '../failover/boot/standalone.js';
import { subtree, topDevices, type ValidatedSpec } from '../failover/config/device-graph.js';
import { diffConfigs, type ConfigDiff } from '../failover/config/diff.js';
import { withMembershipChange } from '../failover/config/membership.js';
import type { ExportConfig, MemberConfig } from '../failover/config/schema/member-config.js';
import type { ConfigStore } from '../failover/config/store.js';
import { validateMemberConfig, type ValidatedConfig } from '../failover/config/validate.js';
import type { MembershipChange } from '../failover/context.js';
import { buildFailoverSets } from '../failover/from-graph.js';
import type { FailoverSets } from '../failover/sets.js';
import { buildDevices } from './devices/build.js';
import type { ConfigControl } from './config-control.js';
import type { ConfigProblem } from '../failover/config/errors.js';
import type { InUse, Port, PortProvider } from './ports.js';
import { refuseIfAny, reloadRefusals } from './reload-check.js';
import type { MemberStore } from './store.js';

export interface MemberOptions {
  /** For device state (bitmaps…). */
  readonly dataDir: string;
  /** The member store, for ports that keep state in it. Not closed by the member. */
  readonly store?: MemberStore;
  /** The ports this member runs (the gateway's). */
  readonly ports: PortProvider;
  /** Which member of the config's cluster this process is (`serve --member`); default: config.member. */
  readonly memberId?: string;
  /** Decides roles before the ports open; default: standalone without a cluster section, else cluster. */
  readonly bootPhase?: BootPhase;
  /** The software version a cluster member announces to its peers. */
  readonly version?: string;
}

/** A configuration's changes against the running one, and the ones that would be refused now. */
export interface ReloadPlan {
  readonly diff: ConfigDiff;
  readonly refused: readonly ConfigProblem[];
}

const log = logger('member');

/**
 * One running member: its device graph in a fabric switch, its failover sets, the roles its
 * boot phase decided, and the ports serving the exports. Started whole or not at all: build
 * the device graph → boot phase → start ports → roles start; if anything fails, what already
 * started is closed. Stopped in reverse. `reload` applies a new configuration live.
 */
export class Member {
  private stopping: Promise<void> | undefined;
  /** Reloads run one at a time. */
  private applying: Promise<unknown> = Promise.resolve();
  /** How the ports (the management API) apply configurations; set by whoever started the member. */
  configControl: ConfigControl | undefined;

  private constructor(
    private current: ValidatedConfig,
    readonly fabric: FabricSwitch,
    private failoverSets: FailoverSets,
    private running: Port[],
    readonly boot: BootOutcome,
    private readonly devices: Map<string, BlockDevice>,
    private readonly options: MemberOptions,
  ) {}

  get config(): MemberConfig {
    return this.current.config;
  }

  /** The failover sets of the devices running now (rebuilt by a reload). */
  get sets(): FailoverSets {
    return this.failoverSets;
  }

  get ports(): readonly Port[] {
    return this.running;
  }

  static async start(config: MemberConfig, options: MemberOptions): Promise<Member> {
    // Every section is checked again before anything is built or bound: the caller may have
    // changed the configuration (command-line overrides).
    const validated = validateMemberConfig(config);
    const memberId = options.memberId ?? config.member;
    const devices = await buildDevices(validated.graph, { dataDir: options.dataDir, memberId });
    const sets = failoverSetsOf(devices, validated, options.store);
    sets.start();
    const fabric = new FabricSwitch();
    const started: Port[] = [];
    let boot: BootOutcome | undefined;
    let member: Member | undefined;
    try {
      for (const device of devices.values()) fabric.addDevice(device);
      // The cluster's services (and their etcd client) are loaded only by a member that has a cluster.
      const phase = options.bootPhase ?? (config.cluster ? (await import('../failover/cluster/boot.js')).clusterBoot : standaloneBoot);
      boot = await phase.boot({
        config,
        memberId,
        fabric,
        setPorts: (set) => options.ports.setPorts(set, fabric, memberId, config),
        ...(options.store && { store: options.store }),
        ...(options.version !== undefined && { version: options.version }),
        // A self-test reads the devices exported now (a reload may have rebuilt them).
        devices: () => member?.exportedDevices() ?? [],
        api: () => apiUrl(member?.ports ?? started),
      });
      member = new Member(validated, fabric, sets, started, boot, devices, options);
      for (const e of config.exports) member.addExport(e);
      for (const protocol of options.ports.protocols(config)) {
        const port = member.portFor(protocol, config);
        // Listed before start: one that fails half-way (second listener busy) is stopped too.
        started.push(port);
        await port.start();
      }
    } catch (err) {
      await Promise.allSettled(started.map((p) => p.stop({ drainMs: 0 })));
      sets.stop();
      await boot?.stop();
      await closeTopDown(topDevices(validated.graph).map((n) => devices.get(n)!), fabric);
      throw err;
    }
    // Roles are decided once everything else is up: a member campaigns only when it could serve.
    boot.start();
    log.info({ member: memberId, boot: boot.mode, devices: devices.size, exports: config.exports.length, listen: member.addresses() }, 'member started');
    return member;
  }

  /** Listening addresses by protocol. */
  addresses(): Record<string, string[]> {
    return addressesByProtocol(this.running);
  }

  /**
   * Apply a new configuration without a restart. Only what changed is touched: device trees
   * with a changed device are closed and built anew (their exports' clients are disconnected
   * cleanly: requests in flight are answered first), exports and iSCSI targets are added or
   * removed, listeners opened or closed; clients of everything else keep their connections.
   * Changes that only a restart can make, that would lose a memory device's contents, or
   * that would change an export or target under its connected clients, are refused
   * (ReloadRefused, reload-check.ts) before anything changes. If building the new devices fails, the old ones are restored.
   */
  reload(next: MemberConfig, options: { drainMs?: number } = {}): Promise<ConfigDiff> {
    const run = this.applying.then(() => this.reloadNow(next, options.drainMs ?? 5000));
    this.applying = run.catch(() => undefined);
    return run;
  }

  /** What `reload(next)` would change, and what of it would be refused now (reload-check.ts), without changing anything. */
  plan(next: MemberConfig): ReloadPlan {
    const validated = validateMemberConfig(next);
    const diff = diffConfigs(this.current, validated);
    return { diff, refused: diff.empty ? [] : reloadRefusals(diff, this.current, validated, this.inUse()) };
  }

  /** What the connected clients of every port hold open. */
  private inUse(): InUse {
    const all = this.running.map((p) => p.inUse?.() ?? { exports: [], targets: [] });
    return { exports: all.flatMap((u) => u.exports), targets: all.flatMap((u) => u.targets) };
  }

  private async reloadNow(nextConfig: MemberConfig, drainMs: number): Promise<ConfigDiff> {
    if (this.stopping) throw new Error('the member is stopping');
    const next = validateMemberConfig(nextConfig);
    const diff = diffConfigs(this.current, next);
    if (diff.empty) return diff;
    refuseIfAny(reloadRefusals(diff, this.current, next, this.inUse()));
    log.info({ diff }, 'applying a new configuration');

    // 1. Clients of exports that go away or change are disconnected, before their devices close.
    const dropped = new Set(diff.droppedExports);
    await Promise.all(this.running.map((p) => p.release?.(dropped, next.config)));
    for (const name of dropped) this.fabric.removeExport(name);

    // 2. The failover sets are rebuilt over the new graph: stop watching the old devices.
    this.failoverSets.stop();
    await this.failoverSets.settled();

    // 3. Close the changed trees, build the new ones; put the old ones back if that fails.
    const before = this.current;
    await this.closeTrees(before.graph, diff.closedTrees);
    try {
      await this.buildTrees(next.graph, diff.builtTrees);
    } catch (err) {
      log.error({ err }, 'new devices failed to build: restoring the previous ones');
      await this.buildTrees(before.graph, diff.closedTrees).catch((restoreErr: unknown) =>
        log.error({ err: restoreErr, trees: diff.closedTrees }, 'could not restore the previous devices: their exports stay down'),
      );
      for (const e of before.config.exports) if (dropped.has(e.name) && this.fabric.device(e.device)) this.addExport(e);
      this.failoverSets = failoverSetsOf(this.devices, before, this.options.store);
      this.failoverSets.start();
      await Promise.all(this.running.map((p) => p.reconfigure?.(before.config)));
      throw err;
    }
    this.current = next;
    this.failoverSets = failoverSetsOf(this.devices, next, this.options.store);
    this.failoverSets.start();

    // 4. New and changed exports, then the ports: reconfigured, started or stopped.
    for (const e of next.config.exports) if (!this.fabric.lookupExport(e.name)) this.addExport(e);
    await this.reconcilePorts(next.config, drainMs);
    log.info({ member: next.config.member, devices: this.devices.size, exports: next.config.exports.length, listen: this.addresses() }, 'configuration applied');
    return diff;
  }

  /** The top devices of the graph running now (a cluster member's self-test reads them). */
  exportedDevices(): BlockDevice[] {
    // A shared-nothing volume is this member's own replica, whatever its role: the mirror
    // across the members exists only on the Primary, and a standby's disk must answer too.
    return topDevices(this.current.graph).flatMap((n) => {
      const d = this.devices.get(n);
      return d === undefined ? [] : d instanceof ReplicatedVolume ? [d.local] : [d];
    });
  }

  private addExport(e: ExportConfig): void {
    // A gated export (a cluster set's) is checked per request: served only while Primary.
    const gate = this.boot.gate(e.name);
    this.fabric.addExport(gate ? { ...e, wrap: (d) => new FencedLayer(d, gate) } : e);
  }

  private async closeTrees(graph: ReadonlyMap<string, ValidatedSpec>, tops: readonly string[]): Promise<void> {
    const closing = tops.map((t) => this.devices.get(t)).filter((d): d is BlockDevice => d !== undefined);
    for (const top of tops) {
      for (const name of subtree(graph, top)) {
        this.fabric.removeDevice(name);
        this.devices.delete(name);
      }
    }
    const results = await Promise.allSettled(closing.map((d) => d.close()));
    results.forEach((r, i) => {
      if (r.status === 'rejected') log.warn({ err: r.reason, device: closing[i]!.name }, 'device close failed');
    });
  }

  private async buildTrees(graph: ReadonlyMap<string, ValidatedSpec>, tops: readonly string[]): Promise<void> {
    const names = new Set(tops.flatMap((t) => subtree(graph, t)));
    const built = await buildDevices(new Map([...graph].filter(([n]) => names.has(n))), { dataDir: this.options.dataDir, memberId: this.options.memberId ?? this.current.config.member });
    for (const [name, device] of built) {
      this.devices.set(name, device);
      this.fabric.addDevice(device);
    }
  }

  private portFor(protocol: string, config: MemberConfig): Port {
    return this.options.ports.port(protocol, {
      config,
      fabric: this.fabric,
      sets: () => this.failoverSets,
      dataDir: this.options.dataDir,
      store: this.options.store,
      memberId: this.options.memberId ?? this.config.member,
      primaryOf: (set) => this.boot.primaryOf(set),
      boot: this.boot,
      ports: () => this.running,
      addresses: () => this.addresses(),
      configControl: () => this.configControl,
    });
  }

  /** Ports the new configuration still calls for are reconfigured, the others stopped, new ones started. */
  private async reconcilePorts(config: MemberConfig, drainMs: number): Promise<void> {
    const protocols = this.options.ports.protocols(config);
    for (const port of this.running.filter((p) => !protocols.includes(p.protocol))) await port.stop({ drainMs });
    const ports: Port[] = [];
    try {
      for (const protocol of protocols) {
        const running = this.running.find((p) => p.protocol === protocol);
        if (running) {
          ports.push(running);
          await running.reconfigure?.(config);
        } else {
          const port = this.portFor(protocol, config);
          await port.start();
          ports.push(port);
        }
      }
    } finally {
      this.running = ports;
    }
  }

  /** Roles first (handed over), then ports (draining in-flight requests), then devices. Safe to call twice. */
  stop(options: { drainMs?: number } = {}): Promise<void> {
    this.stopping ??= this.applying.then(() => this.stopOnce(options.drainMs ?? 5000));
    return this.stopping;
  }

  private async stopOnce(drainMs: number): Promise<void> {
    log.info({ member: this.config.member, drainMs }, 'member stopping');
    await this.boot.stop();
    const results = await Promise.allSettled([...this.running].reverse().map((p) => p.stop({ drainMs })));
    results.forEach((r) => {
      if (r.status === 'rejected') log.warn({ err: r.reason }, 'port stop failed');
    });
    this.failoverSets.stop();
    await this.failoverSets.settled();
    await closeTopDown(topDevices(this.current.graph).map((n) => this.devices.get(n)!), this.fabric);
    log.info({ member: this.config.member }, 'member stopped');
  }
}

/** The failover sets of a built graph (a mirror set per mirror, a path set per multipath). */
function failoverSetsOf(devices: ReadonlyMap<string, BlockDevice>, { config, graph }: ValidatedConfig, store: MemberStore | undefined): FailoverSets {
  const parentOf = new Map<string, string>();
  for (const [name, v] of graph) for (const child of v.children) parentOf.set(child, name);
  const exportOf = new Map(config.exports.map((e) => [e.device, `export ${e.name}`]));
  return buildFailoverSets(devices, graph, {
    usedBy: (name) => parentOf.get(name) ?? exportOf.get(name),
    ...(store && { onMembershipChange: storeMembershipChange(store.config, config) }),
  });
}

/** A spare added or removed at run time becomes a new configuration generation, kept across restarts. */
function storeMembershipChange(store: ConfigStore, running: MemberConfig): (change: MembershipChange) => Promise<void> {
  return async (change) => {
    const base = store.current()?.config ?? running;
    const next = validateMemberConfig(withMembershipChange(validateMemberConfig(base).config, change)).config;
    const { record } = await store.commit(next, { writtenBy: running.member, source: `api:${change.change}:${change.set}:${change.device}` });
    log.info({ ...change, generation: record.generation }, 'membership change stored as a new configuration generation');
  };
}

/**
 * Layers first: a mirror persists its bitmaps and closes its replicas itself, so each
 * device closes after whatever wraps it. The switch then releases what is left (closing a
 * closed device does nothing).
 */
async function closeTopDown(tops: readonly BlockDevice[], fabric: FabricSwitch): Promise<void> {
  const results = await Promise.allSettled(tops.map((d) => d.close()));
  results.forEach((r, i) => {
    if (r.status === 'rejected') log.warn({ err: r.reason, device: tops[i]!.name }, 'device close failed');
  });
  await fabric.close();
}

/** The management API's URL (its first TCP listener), for peers and operators. */
function apiUrl(ports: readonly Port[]): string | undefined {
  const address = ports.find((p) => p.protocol === 'api')?.addresses().find((a) => !a.startsWith('unix:'));
  return address === undefined ? undefined : `http://${address}`;
}

function addressesByProtocol(ports: readonly Port[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const p of ports) (out[p.protocol] ??= []).push(...p.addresses());
  return out;
}
