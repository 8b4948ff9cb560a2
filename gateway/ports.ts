import { canonicalJson } from '../failover/config/canonical.js';
import type { IscsiConfig, IscsiTargetConfig } from '../failover/config/schema/iscsi.js';
import type { ListenAddress } from '../failover/config/schema/listen.js';
import type { MemberConfig } from '../failover/config/schema/member-config.js';
import type { InUse, Port, PortContext, PortProvider } from '../member/ports.js';
import type { LunMapping } from './api/exports.js';
import { Forwarder } from './api/forward.js';
import { primaryDirectory } from './api/primary-directory.js';
import { ApiServer } from './api/server.js';
import { IscsiServer } from './iscsi/server.js';
import { NbdServer } from './nbd/server.js';
import type { FrontEndSession } from './sessions.js';
import { setPorts } from './set-ports.js';
import { replicationPort } from './replication-port.js';
import { setOfTarget } from '../failover/config/cluster-iscsi.js';
import { connectionLimits } from './access/connection-limits.js';
import { Refusals } from './access/refusals.js';
import { DeviceReservations } from './scsi/device-reservations.js';
import { LmdbReservationStore } from './scsi/reservation-store-lmdb.js';
import { ReservationFence } from './scsi/reservation-fence.js';
import { nbdSecurity } from './nbd/security.js';
import type { BlockDevice } from '../fabric/device.js';
import type { FabricSwitch } from '../fabric/switch.js';

/** A port of the gateway: also lists the clients connected to it now (NBD connections, iSCSI sessions) and the LUNs it maps. */
interface GatewayPort extends Port {
  sessions?(): FrontEndSession[];
  luns?(): LunMapping[];
}

/** What the gateway's ports share: one count of refused clients, one reservation state per device. */
interface Shared {
  /** Clients any front end turned away, shown by the metrics endpoint. */
  readonly refusals: Refusals;
  /**
   * SCSI reservations are the device's, whichever target or front end reaches it; they live
   * in the member store (so APTPL ones survive a restart) and NBD clients are held to them.
   * Made with the first iSCSI port (at start, or when a reload adds the first target).
   */
  reservations: DeviceReservations | undefined;
}

/** How long a client of a removed or rebuilt export may finish its requests before it is cut. */
const RELEASE_DRAIN_MS = 5000;

/** One Shared per member (a member has one fabric), for the ports it starts then and on a reload. */
const sharedOfMember = new WeakMap<FabricSwitch, Shared>();
const refusalsOfMember = new WeakMap<FabricSwitch, Refusals>();

/** The member's one count of refused clients (its failover sets' ports count there too). */
function refusalsOf(fabric: FabricSwitch): Refusals {
  let refusals = refusalsOfMember.get(fabric);
  if (!refusals) refusalsOfMember.set(fabric, (refusals = new Refusals()));
  return refusals;
}

function sharedOf({ config, store, fabric }: PortContext): Shared {
  let shared = sharedOfMember.get(fabric);
  if (!shared) {
    shared = {
      refusals: refusalsOf(fabric),
      reservations: config.iscsi && config.iscsi.targets.length > 0 ? reservationsOf(store) : undefined,
    };
    sharedOfMember.set(fabric, shared);
  }
  return shared;
}

/** The gateway's ports, as the member starts them: NBD, iSCSI, then the management API. */
export const gatewayPorts: PortProvider = {
  protocols: (config) => [
    ...(config.nbd.listen.length > 0 ? ['nbd'] : []),
    ...(config.iscsi && config.iscsi.targets.length > 0 ? ['iscsi'] : []),
    ...(config.api && config.api.listen.length > 0 ? ['api'] : []),
    // A shared-nothing device: every member exports its replica to the set's Primary.
    ...([...config.backends, ...config.devices].some((d) => d.type === 'replicated') ? ['replication'] : []),
  ],
  port(protocol, context) {
    switch (protocol) {
      case 'nbd':
        return nbdPort(context, sharedOf(context));
      case 'iscsi':
        return iscsiPort(context, sharedOf(context));
      case 'api':
        return apiPort(context, sharedOf(context));
      case 'replication':
        return replicationPort(context);
      default:
        throw new Error(`no ${protocol} port in the gateway`);
    }
  },
  // A set's NBD listeners are held to the member's TLS, access lists and client limits, and
  // count their refusals with the member's other front ends.
  setPorts: (set, fabric, memberId, config) =>
    setPorts(set, fabric, memberId, {
      ...nbdSecurity(config),
      refusals: refusalsOf(fabric),
      connectionLimits: connectionLimits(config.nbd),
      ...(config.nbd.handshakeTimeoutMs !== undefined && { handshakeTimeoutMs: config.nbd.handshakeTimeoutMs }),
    }),
};

function reservationsOf(store: PortContext['store']): DeviceReservations {
  return new DeviceReservations(store ? new LmdbReservationStore(store.root) : undefined);
}

function nbdPort({ config, fabric }: PortContext, shared: Shared): GatewayPort {
  const { refusals } = shared;
  const server = new NbdServer({
    ...nbdSecurity(config),
    fabric,
    id: `${config.member}/nbd`,
    listen: config.nbd.listen.map(toNbdListen),
    refusals,
    connectionLimits: connectionLimits(config.nbd),
    guard: (device: BlockDevice) => new ReservationFence(device, () => shared.reservations),
    ...(config.nbd.handshakeTimeoutMs !== undefined && { handshakeTimeoutMs: config.nbd.handshakeTimeoutMs }),
    // A client asking for the empty export name (NBD's default export) gets the first one.
    ...(config.exports[0] && { defaultExport: config.exports[0].name }),
  });
  return {
    protocol: 'nbd',
    start: () => server.start(),
    stop: (options) => server.stop(options),
    addresses: () => server.addresses().map(formatAddress),
    sessions: () => server.sessionList(),
    inUse: () => inUseBy(server.sessionList()),
    release: (exports) => server.release(exports, RELEASE_DRAIN_MS),
    async reconfigure(next) {
      // New connections get the new exports' access lists; the listeners follow nbd.listen.
      server.reconfigure({ defaultExport: next.exports[0]?.name, access: nbdSecurity(next).access });
      await server.relisten(next.nbd.listen.map(toNbdListen));
    },
  };
}

function iscsiPort({ config, fabric, memberId, primaryOf, store }: PortContext, shared: Shared): GatewayPort {
  const { refusals } = shared;
  const reservations = (shared.reservations ??= reservationsOf(store));
  let iscsi: IscsiConfig = config.iscsi!;
  const server = new IscsiServer({
    fabric,
    targets: iscsi.targets,
    ...(iscsi.discoveryChap && { discoveryChap: iscsi.discoveryChap }),
    // A set's targets are served by every member of the set, each on its own portal groups.
    ...(config.cluster && {
      cluster: {
        memberId,
        primaryOf: (target) => {
          const set = setOfTarget(target, config.cluster);
          return set && primaryOf(set.name);
        },
      },
    }),
    refusals,
    connectionLimits: connectionLimits(iscsi),
    ...(iscsi.loginTimeoutMs !== undefined && { loginTimeoutMs: iscsi.loginTimeoutMs }),
    ...(iscsi.queueDepth !== undefined && { queueDepth: iscsi.queueDepth }),
    reservations,
  });
  return {
    protocol: 'iscsi',
    start: () => server.start(),
    stop: (options) => server.stop(options),
    addresses: () => server.addresses().map((a) => `${formatAddress(a)} ${a.target} tpg ${a.portalGroup}`),
    sessions: () => server.sessionList(),
    inUse: () => inUseBy(server.sessionList()),
    luns: () => {
      const portals = server.addresses();
      return iscsi.targets.flatMap((t) =>
        t.luns.map((l) => ({ target: t.name, lun: l.lun, export: l.export, portals: portals.filter((p) => p.target === t.name).map(formatAddress) })),
      );
    },
    // A target goes (its sessions logged out) when it is removed, changed, or maps an export that goes.
    async release(exports, next) {
      const after = new Map((next.iscsi?.targets ?? []).map((t) => [t.name, t]));
      const leaving = iscsi.targets.filter((t) => !sameTarget(t, after.get(t.name)) || t.luns.some((l) => exports.has(l.export)));
      for (const t of leaving) await server.removeTarget(t.name, RELEASE_DRAIN_MS);
    },
    async reconfigure(next: MemberConfig) {
      iscsi = next.iscsi!;
      const serving = new Set(server.targetNames());
      for (const t of iscsi.targets) if (!serving.has(t.name)) await server.addTarget(t);
    },
  };
}

/** What the sessions that reached an export or logged in to a target hold open. */
function inUseBy(sessions: readonly FrontEndSession[]): InUse {
  const serving = sessions.filter((s) => s.kind === 'normal' && s.state === 'serving');
  return { exports: serving.flatMap((s) => s.exports), targets: serving.flatMap((s) => (s.target === undefined ? [] : [s.target])) };
}

function sameTarget(a: IscsiTargetConfig, b: IscsiTargetConfig | undefined): boolean {
  return b !== undefined && canonicalJson(a) === canonicalJson(b);
}

function apiPort({ config, fabric, sets, dataDir, addresses, ports, configControl, boot }: PortContext, { refusals }: Shared): GatewayPort {
  const api = config.api!;
  const dataPorts = () => ports() as readonly GatewayPort[];
  const server = new ApiServer({
    fabric,
    // Read on every use: a live configuration change rebuilds the sets.
    get sets() {
      return sets();
    },
    member: config.member,
    listen: api.listen,
    dataDir,
    ...(api.tls && { tls: api.tls }),
    openMetrics: api.openMetrics,
    refusals,
    addresses,
    sessions: () => dataPorts().flatMap((p) => p.sessions?.() ?? []),
    luns: () => dataPorts().flatMap((p) => p.luns?.() ?? []),
    configControl,
    ...(boot.cluster && { cluster: boot.cluster }),
    // A cluster with management networks: a change sent here goes to its set's Primary.
    ...(boot.cluster && config.cluster && { forwarder: new Forwarder(primaryDirectory(config, boot, boot.cluster, () => configControl()?.current()?.generation)) }),
  });
  return {
    protocol: 'api',
    start: () => server.start(),
    stop: (options) => server.stop(options),
    addresses: () => server.addresses().map(formatAddress),
  };
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
