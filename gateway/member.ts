import type { RootDatabase } from 'lmdb';
import type { BlockDevice } from '../fabric/device.js';
import { ConfigError } from '../failover/config/errors.js';
import { FabricSwitch } from '../fabric/switch.js';
import { logger } from '../fabric/log.js';
import type { IscsiConfig } from '../failover/config/schema/iscsi.js';
import type { ListenAddress } from '../failover/config/schema/listen.js';
import type { MemberConfig } from '../failover/config/schema/member-config.js';
import { topDevices } from '../failover/config/device-graph.js';
import { validateMemberConfig } from '../failover/config/validate.js';
import { buildDevices } from '../member/devices/build.js';
import { withMembershipChange } from '../failover/config/membership.js';
import { ConfigStore } from '../failover/config/store.js';
import type { MembershipChange } from '../failover/context.js';
import { buildFailoverSets } from '../failover/from-graph.js';
import type { FailoverSets } from '../failover/sets.js';
import { NbdServer } from './nbd/server.js';
import { onOnePortal } from './iscsi/config.js';
import type { PortalConfig } from './iscsi/target-runtime.js';
import { IscsiServer } from './iscsi/server.js';
import { ApiServer } from './api/server.js';
import type { LunMapping } from './api/exports.js';
import type { FrontEndSession } from './sessions.js';
import { FencedLayer } from '../fabric/layers/fenced.js';
import type { Arbiter } from '../failover/arbitration/arbiter.js';
import { arbiterOf } from '../failover/cluster/arbiter-of.js';
import { SetRunner } from '../failover/cluster/set-runner.js';
import { setPorts } from './set-ports.js';

/** A front-end protocol server: what hosts connect to. The member starts and stops them as a list. */
export interface FrontEnd {
  readonly protocol: string;
  start(): Promise<void>;
  /** Stop accepting, let in-flight requests finish for up to `drainMs`, then close. */
  stop(options: { drainMs: number }): Promise<void>;
  /** Where hosts reach it, for logs and tests: `127.0.0.1:10809`, `unix:/run/x.sock`. */
  addresses(): string[];
  /** The clients connected now (NBD connections, iSCSI sessions). */
  sessions?(): FrontEndSession[];
}

export interface MemberOptions {
  /** For device state (bitmaps…) and the member's LMDB. */
  readonly dataDir: string;
  /** The member's LMDB root, for subsystems keeping state in named sub-databases. Not closed by the member. */
  readonly database?: RootDatabase;
  /** Serve every iSCSI target on this one portal instead of the configured ones (tests, `serve --iscsi`). */
  readonly iscsiPortal?: PortalConfig;
  /** Which member of the config's cluster this process is (`serve --member`); default: config.member. */
  readonly memberId?: string;
}

/** A member's part in its cluster: the arbiter and one runner per failover set it belongs to. */
interface ClusterPart {
  readonly arbiter: Arbiter;
  readonly runners: readonly SetRunner[];
}

const log = logger('member');

/**
 * One running member: its device graph in a fabric switch, and the front ends serving the
 * exports. Started whole or not at all: if anything fails, what already started is closed.
 */
export class Member {
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly config: MemberConfig,
    readonly fabric: FabricSwitch,
    readonly sets: FailoverSets,
    readonly frontEnds: readonly FrontEnd[],
    readonly database: RootDatabase | undefined,
    private readonly topDevices: readonly BlockDevice[],
    readonly cluster: ClusterPart | undefined,
  ) {}

  static async start(config: MemberConfig, options: MemberOptions): Promise<Member> {
    // Every section is checked before anything is built or bound.
    const { graph } = validateMemberConfig(config);
    let iscsi = config.iscsi;
    if (iscsi && options.iscsiPortal) iscsi = onOnePortal(iscsi, options.iscsiPortal);
    const devices = await buildDevices(graph, { dataDir: options.dataDir });
    const tops = topDevices(graph).map((name) => devices.get(name)!);
    const parentOf = new Map<string, string>();
    for (const [name, v] of graph) for (const child of v.children) parentOf.set(child, name);
    const exportOf = new Map(config.exports.map((e) => [e.device, `export ${e.name}`]));
    const sets = buildFailoverSets(devices, graph, {
      usedBy: (name) => parentOf.get(name) ?? exportOf.get(name),
      ...(options.database && { onMembershipChange: storeMembershipChange(options.database, config) }),
    });
    sets.start();
    const fabric = new FabricSwitch();
    const started: FrontEnd[] = [];
    const cluster = clusterPart(config, options.memberId ?? config.member, fabric);
    try {
      for (const device of devices.values()) fabric.addDevice(device);
      for (const e of config.exports) {
        // In a cluster every export is gated by its set's leadership, checked per request.
        const gate = cluster?.gates.get(e.name);
        fabric.addExport(cluster ? { ...e, wrap: (d) => new FencedLayer(d, gate ?? (() => false)) } : e);
      }
      for (const frontEnd of createFrontEnds(config, iscsi, fabric, sets, options)) {
        // Listed before start: one that fails half-way (second listener busy) is stopped too.
        started.push(frontEnd);
        await frontEnd.start();
      }
    } catch (err) {
      await Promise.allSettled(started.map((f) => f.stop({ drainMs: 0 })));
      sets.stop();
      await cluster?.part.arbiter.close();
      await closeTopDown(tops, fabric);
      throw err;
    }
    const member = new Member(config, fabric, sets, started, options.database, tops, cluster?.part);
    // Roles are decided once everything else is up: a member campaigns only when it could serve.
    for (const runner of cluster?.part.runners ?? []) runner.start();
    log.info({ member: config.member, devices: devices.size, exports: config.exports.length, listen: member.addresses() }, 'member started');
    return member;
  }

  /** Listening addresses by protocol. */
  addresses(): Record<string, string[]> {
    return addressesByProtocol(this.frontEnds);
  }

  /** Front ends first (draining in-flight requests), then the devices. Safe to call twice. */
  stop(options: { drainMs?: number } = {}): Promise<void> {
    this.stopping ??= this.stopOnce(options.drainMs ?? 5000);
    return this.stopping;
  }

  private async stopOnce(drainMs: number): Promise<void> {
    log.info({ member: this.config.member, drainMs }, 'member stopping');
    if (this.cluster) {
      // Hand every role over first (resign): the next Primary starts without a lease wait.
      await Promise.allSettled(this.cluster.runners.map((r) => r.stop()));
      await this.cluster.arbiter.close();
    }
    const results = await Promise.allSettled(this.frontEnds.map((f) => f.stop({ drainMs })));
    results.forEach((r, i) => {
      if (r.status === 'rejected') log.warn({ err: r.reason, protocol: this.frontEnds[i]!.protocol }, 'front end stop failed');
    });
    this.sets.stop();
    await this.sets.settled();
    await closeTopDown(this.topDevices, this.fabric);
    log.info({ member: this.config.member }, 'member stopped');
  }
}

/** With a cluster section: the arbiter, a runner for each set this member belongs to, and the gate of every export. */
function clusterPart(config: MemberConfig, memberId: string, fabric: FabricSwitch): { part: ClusterPart; gates: Map<string, () => boolean> } | undefined {
  const cluster = config.cluster;
  if (!cluster) return undefined;
  if (!cluster.members.some((m) => m.id === memberId)) {
    throw new ConfigError('cluster.members', `this member (${memberId}) is not listed (members: ${cluster.members.map((m) => m.id).join(', ')}); give --member`);
  }
  const arbiter = arbiterOf(cluster);
  const gates = new Map<string, () => boolean>();
  const runners: SetRunner[] = [];
  for (const set of cluster.sets) {
    if (!set.members.includes(memberId)) continue;
    const runner = new SetRunner(set, memberId, arbiter, setPorts(set, fabric, memberId), { pid: process.pid });
    runners.push(runner);
    for (const e of set.exports) gates.set(e, runner.mayServe);
  }
  return { part: { arbiter, runners }, gates };
}

/**
 * Layers first: a mirror persists its bitmaps and closes its replicas itself, so each
 * device closes after whatever wraps it. The switch then releases what is left (closing a
 * closed device does nothing).
 */
async function closeTopDown(topDevices: readonly BlockDevice[], fabric: FabricSwitch): Promise<void> {
  const results = await Promise.allSettled(topDevices.map((d) => d.close()));
  results.forEach((r, i) => {
    if (r.status === 'rejected') log.warn({ err: r.reason, device: topDevices[i]!.name }, 'device close failed');
  });
  await fabric.close();
}

/** Every front end this member runs, in start order. A protocol joins with one block here. */
function createFrontEnds(
  config: MemberConfig,
  iscsi: IscsiConfig | undefined,
  fabric: FabricSwitch,
  sets: FailoverSets,
  { database, dataDir }: MemberOptions,
): FrontEnd[] {
  const frontEnds: FrontEnd[] = [];
  let luns: () => LunMapping[] = () => [];

  if (config.nbd.listen.length > 0) {
    const server = new NbdServer({
      fabric,
      id: `${config.member}/nbd`,
      listen: config.nbd.listen.map(toNbdListen),
      // A client asking for the empty export name (NBD's default export) gets the first one.
      ...(config.exports[0] && { defaultExport: config.exports[0].name }),
    });
    frontEnds.push({
      protocol: 'nbd',
      start: () => server.start(),
      stop: (options) => server.stop(options),
      addresses: () => server.addresses().map(formatAddress),
      sessions: () => server.sessionList(),
    });
  }

  if (iscsi && iscsi.targets.length > 0) {
    const server = new IscsiServer({
      fabric,
      targets: iscsi.targets,
      ...(iscsi.discoveryChap && { discoveryChap: iscsi.discoveryChap }),
      // Persistent reservations live beside the config, so they survive a restart.
      ...(database && { database }),
    });
    frontEnds.push({
      protocol: 'iscsi',
      start: () => server.start(),
      stop: (options) => server.stop(options),
      addresses: () => server.addresses().map((a) => `${formatAddress(a)} ${a.target} tpg ${a.portalGroup}`),
      sessions: () => server.sessionList(),
    });
    luns = () => {
      const portals = server.addresses();
      return iscsi.targets.flatMap((t) =>
        t.luns.map((l) => ({ target: t.name, lun: l.lun, export: l.export, portals: portals.filter((p) => p.target === t.name).map(formatAddress) })),
      );
    };
  }

  if (config.api && config.api.listen.length > 0) {
    const server = new ApiServer({
      fabric,
      sets,
      member: config.member,
      listen: config.api.listen,
      dataDir,
      ...(config.api.tls && { tls: config.api.tls }),
      openMetrics: config.api.openMetrics,
      // The status page lists every front end, this one included, as they are when asked.
      addresses: () => addressesByProtocol(frontEnds),
      sessions: () => frontEnds.flatMap((f) => f.sessions?.() ?? []),
      luns: () => luns(),
    });
    frontEnds.push({
      protocol: 'api',
      start: () => server.start(),
      stop: (options) => server.stop(options),
      addresses: () => server.addresses().map(formatAddress),
    });
  }

  return frontEnds;
}

/** A spare added or removed at run time becomes a new configuration generation, kept across restarts. */
function storeMembershipChange(database: RootDatabase, running: MemberConfig): (change: MembershipChange) => Promise<void> {
  const store = new ConfigStore(database);
  return async (change) => {
    const base = store.current()?.config ?? running;
    const next = validateMemberConfig(withMembershipChange(validateMemberConfig(base).config, change)).config;
    const { record } = await store.commit(next, { writtenBy: running.member, source: `api:${change.change}:${change.set}:${change.device}` });
    log.info({ ...change, generation: record.generation }, 'membership change stored as a new configuration generation');
  };
}

function addressesByProtocol(frontEnds: readonly FrontEnd[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const f of frontEnds) (out[f.protocol] ??= []).push(...f.addresses());
  return out;
}

function toNbdListen(a: ListenAddress): { host: string; port: number } | { socketPath: string } {
  return 'socket' in a ? { socketPath: a.socket } : { host: a.host, port: a.port };
}

/** Render whatever address form a server reports (TCP host/port, Unix socket path, or text). */
export function formatAddress(a: unknown): string {
  if (typeof a === 'string') return a;
  if (typeof a === 'object' && a !== null) {
    const o = a as { host?: unknown; address?: unknown; port?: unknown; socketPath?: unknown; path?: unknown };
    const socket = o.socketPath ?? o.path;
    if (typeof socket === 'string') return `unix:${socket}`;
    const host = o.host ?? o.address;
    if (typeof host === 'string' && typeof o.port === 'number') {
      return host.includes(':') ? `[${host}]:${o.port}` : `${host}:${o.port}`;
    }
  }
  return String(a);
}
