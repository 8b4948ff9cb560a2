import type { ListenAddress } from '../failover/config/schema/listen.js';
import type { Port, PortContext, PortProvider } from '../member/ports.js';
import type { LunMapping } from './api/exports.js';
import { ApiServer } from './api/server.js';
import { IscsiServer } from './iscsi/server.js';
import { NbdServer } from './nbd/server.js';
import type { FrontEndSession } from './sessions.js';
import { setPorts } from './set-ports.js';
import { setOfTarget } from '../failover/config/cluster-iscsi.js';
import { connectionLimits } from './access/connection-limits.js';
import { Refusals } from './access/refusals.js';
import { DeviceReservations } from './scsi/device-reservations.js';
import { LmdbReservationStore } from './scsi/reservation-store-lmdb.js';
import { ReservationFence } from './scsi/reservation-fence.js';
import { nbdSecurity } from './nbd/security.js';
import type { BlockDevice } from '../fabric/device.js';

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
   */
  readonly reservations: DeviceReservations | undefined;
}

/** The gateway's ports, as the member starts them: NBD, iSCSI, then the management API. */
export const gatewayPorts: PortProvider = {
  ports(context) {
    const { config, store } = context;
    const shared: Shared = {
      refusals: new Refusals(),
      reservations: config.iscsi && config.iscsi.targets.length > 0 ? new DeviceReservations(store ? new LmdbReservationStore(store.root) : undefined) : undefined,
    };
    const data = [nbdPort(context, shared), iscsiPort(context, shared)].filter((p): p is GatewayPort => p !== undefined);
    const api = apiPort(context, shared, {
      sessions: () => data.flatMap((p) => p.sessions?.() ?? []),
      luns: () => data.flatMap((p) => p.luns?.() ?? []),
    });
    return api ? [...data, api] : data;
  },
  setPorts,
};

function nbdPort({ config, fabric }: PortContext, { refusals, reservations }: Shared): GatewayPort | undefined {
  if (config.nbd.listen.length === 0) return undefined;
  const server = new NbdServer({
    ...nbdSecurity(config),
    fabric,
    id: `${config.member}/nbd`,
    listen: config.nbd.listen.map(toNbdListen),
    refusals,
    connectionLimits: connectionLimits(config.nbd),
    ...(reservations && { guard: (device: BlockDevice) => new ReservationFence(device, reservations) }),
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
  };
}

function iscsiPort({ config, fabric, memberId, primaryOf }: PortContext, { refusals, reservations }: Shared): GatewayPort | undefined {
  const iscsi = config.iscsi;
  if (!iscsi || iscsi.targets.length === 0) return undefined;
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
    ...(reservations && { reservations }),
  });
  return {
    protocol: 'iscsi',
    start: () => server.start(),
    stop: (options) => server.stop(options),
    addresses: () => server.addresses().map((a) => `${formatAddress(a)} ${a.target} tpg ${a.portalGroup}`),
    sessions: () => server.sessionList(),
    luns: () => {
      const portals = server.addresses();
      return iscsi.targets.flatMap((t) =>
        t.luns.map((l) => ({ target: t.name, lun: l.lun, export: l.export, portals: portals.filter((p) => p.target === t.name).map(formatAddress) })),
      );
    },
  };
}

function apiPort(
  { config, fabric, sets, dataDir, addresses }: PortContext,
  { refusals }: Shared,
  dataPorts: { sessions(): FrontEndSession[]; luns(): LunMapping[] },
): Port | undefined {
  if (!config.api || config.api.listen.length === 0) return undefined;
  const server = new ApiServer({
    fabric,
    sets,
    member: config.member,
    listen: config.api.listen,
    dataDir,
    ...(config.api.tls && { tls: config.api.tls }),
    openMetrics: config.api.openMetrics,
    refusals,
    addresses,
    sessions: () => dataPorts.sessions(),
    luns: () => dataPorts.luns(),
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
