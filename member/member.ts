import type { BlockDevice } from '../fabric/device.js';
import { FencedLayer } from '../fabric/layers/fenced.js';
import { logger } from '../fabric/log.js';
import { FabricSwitch } from '../fabric/switch.js';
import type { BootOutcome, BootPhase } from '../failover/boot/phase.js';
import { standaloneBoot } from '../failover/boot/standalone.js';
import { topDevices } from '../failover/config/device-graph.js';
import type { MemberConfig } from '../failover/config/schema/member-config.js';
import { withMembershipChange } from '../failover/config/membership.js';
import type { ConfigStore } from '../failover/config/store.js';
import { validateMemberConfig } from '../failover/config/validate.js';
import type { MembershipChange } from '../failover/context.js';
import { buildFailoverSets } from '../failover/from-graph.js';
import type { FailoverSets } from '../failover/sets.js';
import { buildDevices } from './devices/build.js';
import type { Port, PortProvider } from './ports.js';
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
}

const log = logger('member');

/**
 * One running member: its device graph in a fabric switch, the roles its boot phase
 * decided, and the ports serving the exports. Started whole or not at all: build the
 * device graph → boot phase → start ports → roles start; if anything fails, what already
 * started is closed. Stopped in reverse.
 */
export class Member {
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly config: MemberConfig,
    readonly fabric: FabricSwitch,
    readonly sets: FailoverSets,
    readonly ports: readonly Port[],
    readonly boot: BootOutcome,
    private readonly tops: readonly BlockDevice[],
  ) {}

  static async start(config: MemberConfig, options: MemberOptions): Promise<Member> {
    // Every section is checked again before anything is built or bound: the caller may have
    // changed the configuration (command-line overrides).
    const { graph } = validateMemberConfig(config);
    const devices = await buildDevices(graph, { dataDir: options.dataDir });
    const tops = topDevices(graph).map((name) => devices.get(name)!);
    const parentOf = new Map<string, string>();
    for (const [name, v] of graph) for (const child of v.children) parentOf.set(child, name);
    const exportOf = new Map(config.exports.map((e) => [e.device, `export ${e.name}`]));
    const sets = buildFailoverSets(devices, graph, {
      usedBy: (name) => parentOf.get(name) ?? exportOf.get(name),
      ...(options.store && { onMembershipChange: storeMembershipChange(options.store.config, config) }),
    });
    sets.start();
    const fabric = new FabricSwitch();
    const memberId = options.memberId ?? config.member;
    const started: Port[] = [];
    let boot: BootOutcome | undefined;
    try {
      for (const device of devices.values()) fabric.addDevice(device);
      // The cluster's services (and their etcd client) are loaded only by a member that has a cluster.
      const phase = options.bootPhase ?? (config.cluster ? (await import('../failover/cluster/boot.js')).clusterBoot : standaloneBoot);
      boot = await phase.boot({ config, memberId, fabric, setPorts: (set) => options.ports.setPorts(set, fabric, memberId) });
      for (const e of config.exports) {
        // A gated export (a cluster set's) is checked per request: served only while Primary.
        const gate = boot.gate(e.name);
        fabric.addExport(gate ? { ...e, wrap: (d) => new FencedLayer(d, gate) } : e);
      }
      const ports = options.ports.ports({
        config,
        fabric,
        sets,
        dataDir: options.dataDir,
        store: options.store,
        memberId,
        primaryOf: (set) => boot!.primaryOf(set),
        // The status page lists every port, the API's own included, as they are when asked.
        addresses: () => addressesByProtocol(ports),
      });
      for (const port of ports) {
        // Listed before start: one that fails half-way (second listener busy) is stopped too.
        started.push(port);
        await port.start();
      }
    } catch (err) {
      await Promise.allSettled(started.map((p) => p.stop({ drainMs: 0 })));
      sets.stop();
      await boot?.stop();
      await closeTopDown(tops, fabric);
      throw err;
    }
    const member = new Member(config, fabric, sets, started, boot, tops);
    // Roles are decided once everything else is up: a member campaigns only when it could serve.
    boot.start();
    log.info({ member: memberId, boot: boot.mode, devices: devices.size, exports: config.exports.length, listen: member.addresses() }, 'member started');
    return member;
  }

  /** Listening addresses by protocol. */
  addresses(): Record<string, string[]> {
    return addressesByProtocol(this.ports);
  }

  /** Roles first (handed over), then ports (draining in-flight requests), then devices. Safe to call twice. */
  stop(options: { drainMs?: number } = {}): Promise<void> {
    this.stopping ??= this.stopOnce(options.drainMs ?? 5000);
    return this.stopping;
  }

  private async stopOnce(drainMs: number): Promise<void> {
    log.info({ member: this.config.member, drainMs }, 'member stopping');
    await this.boot.stop();
    const results = await Promise.allSettled([...this.ports].reverse().map((p) => p.stop({ drainMs })));
    results.forEach((r) => {
      if (r.status === 'rejected') log.warn({ err: r.reason }, 'port stop failed');
    });
    this.sets.stop();
    await this.sets.settled();
    await closeTopDown(this.tops, this.fabric);
    log.info({ member: this.config.member }, 'member stopped');
  }
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

function addressesByProtocol(ports: readonly Port[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const p of ports) (out[p.protocol] ??= []).push(...p.addresses());
  return out;
}
