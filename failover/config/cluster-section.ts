import type { Problems } from './errors.js';
import { parsePeerAddress, parseSubnet } from './net-address.js';
import { DEFAULT_PEER_PORT, DEFAULT_TTL_SECONDS, type Cluster, type ClusterConfig, type HealthConfig, type NetworkConfig } from './schema/cluster.js';
import { toListenAddress, type TcpListen } from './schema/listen.js';
import type { Static } from '@sinclair/typebox';

/** The `cluster` section with its defaults, and the checks that span it and the exports. */

type Section = Static<typeof Cluster>;

/** Defaults of the health monitor: heartbeats every 200 ms, a network silent after 1 s, three failures in ten minutes. */
export const DEFAULT_HEALTH: HealthConfig = {
  heartbeatMs: 200,
  silenceMs: 1000,
  pingIntervalMs: 500,
  selfTestTimeoutMs: 1500,
  eventLoopLimitMs: 2000,
  permanentMs: 30_000,
  failureLimit: { failures: 3, windowMs: 600_000 },
};

/** `absolute` turns a path of the document into the absolute one stored (relative to the config file). */
export function normalizeCluster(section: Section, absolute: (path: string, field: string) => string): ClusterConfig {
  const a = section.arbitration;
  const ttlSeconds = a.type === 'etcd' ? (a.ttlSeconds ?? DEFAULT_TTL_SECONDS) : 0;
  return {
    name: section.name,
    members: section.members,
    networks: (section.networks ?? []).map(normalizeNetwork),
    ...(section.keyFile !== undefined && { keyFile: absolute(section.keyFile, 'cluster.keyFile') }),
    health: { ...DEFAULT_HEALTH, ...section.health },
    boot: {
      quorum: section.boot?.quorum ?? Math.floor(section.members.length / 2) + 1,
      coldStartWaitMs: section.boot?.coldStartWaitMs ?? 60_000,
    },
    arbitration:
      a.type === 'file'
        ? a
        : { type: 'etcd', endpoints: a.endpoints, ttlSeconds, fenceMarginMs: a.fenceMarginMs ?? Math.min(600, ttlSeconds * 300) },
    ...(section.configHistory !== undefined && { configHistory: section.configHistory }),
    sets: section.sets.map((s) => ({
      name: s.name,
      composition: s.composition ?? (s.members.length === 1 ? 'single' : 'n-way'),
      members: s.members,
      exports: s.exports,
      nbd: { listen: (s.nbd?.listen ?? []).map((l) => toListenAddress(l) as TcpListen) },
      ...(s.serviceAddress && { serviceAddress: s.serviceAddress }),
    })),
  };
}

function normalizeNetwork(n: NonNullable<Section['networks']>[number]): NetworkConfig {
  return {
    name: n.name,
    subnet: n.subnet,
    heartbeat: { protocol: n.heartbeat?.protocol ?? 'udp', port: n.heartbeat?.port ?? DEFAULT_PEER_PORT },
    discovery: n.discovery ?? 'mdns',
  };
}

function checkNetworks(cluster: ClusterConfig, problems: Problems): void {
  const field = 'cluster';
  const { networks } = cluster;
  if (networks.length === 0) {
    cluster.members.forEach((m, i) => {
      if (m.addresses) problems.add(`${field}.members[${i}].addresses`, 'needs cluster.networks');
    });
    return;
  }
  if (networks.length < 2) problems.add(`${field}.networks`, 'list two or more management networks: with one, a broken link cannot be told from a dead member');
  if (cluster.keyFile === undefined) problems.add(`${field}.keyFile`, 'is required with networks: member-to-member messages are authenticated with it');
  unique(networks.map((n) => n.name), `${field}.networks`, 'network', problems, (i) => `${field}.networks[${i}].name`);
  const subnets = networks.map((n, i) => {
    const s = parseSubnet(n.subnet);
    if (!s) problems.add(`${field}.networks[${i}].subnet`, `${JSON.stringify(n.subnet)} is not a subnet ADDRESS/PREFIX`);
    return s;
  });
  networks.forEach((n, i) => {
    if (n.discovery === 'mdns') return;
    n.discovery.seeds.forEach((seed, j) => {
      const a = parsePeerAddress(seed, n.heartbeat.port);
      if (!a) problems.add(`${field}.networks[${i}].discovery.seeds[${j}]`, `${JSON.stringify(seed)} is not an address`);
      else if (subnets[i] && !subnets[i].contains(a.host)) problems.add(`${field}.networks[${i}].discovery.seeds[${j}]`, `${a.host} is not in ${n.subnet}`);
    });
  });
  cluster.members.forEach((m, i) => {
    for (const [net, address] of Object.entries(m.addresses ?? {})) {
      const f = `${field}.members[${i}].addresses.${net}`;
      const j = networks.findIndex((n) => n.name === net);
      if (j < 0) {
        problems.add(f, `unknown network ${JSON.stringify(net)} (networks: ${networks.map((n) => n.name).join(', ')})`);
        continue;
      }
      const a = parsePeerAddress(address, DEFAULT_PEER_PORT);
      if (!a) problems.add(f, `${JSON.stringify(address)} is not an address`);
      else if (subnets[j] && !subnets[j].contains(a.host)) problems.add(f, `${a.host} is not in ${networks[j]!.subnet}`);
    }
  });
  const h = cluster.health;
  if (h.silenceMs < 2 * h.heartbeatMs) problems.add(`${field}.health.silenceMs`, `must be at least two heartbeats (${2 * h.heartbeatMs} ms)`);
  if (cluster.boot.quorum > cluster.members.length) problems.add(`${field}.boot.quorum`, `cannot exceed the ${cluster.members.length} members`);
}

export function checkCluster(cluster: ClusterConfig, exportNames: readonly string[], problems: Problems): void {
  const field = 'cluster';
  unique(cluster.members.map((m) => m.id), `${field}.members`, 'member', problems, (i) => `${field}.members[${i}].id`);
  const ids = new Set(cluster.members.map((m) => m.id));
  if (cluster.arbitration.type === 'etcd' && cluster.arbitration.fenceMarginMs >= cluster.arbitration.ttlSeconds * 1000) {
    problems.add(`${field}.arbitration.fenceMarginMs`, `must be less than the lease (${cluster.arbitration.ttlSeconds * 1000} ms)`);
  }
  const owner = new Map<string, string>();
  cluster.sets.forEach((s, i) => {
    const f = `${field}.sets[${i}]`;
    s.members.forEach((id, j) => {
      if (!ids.has(id)) problems.add(`${f}.members[${j}]`, `unknown member ${JSON.stringify(id)} (cluster.members: ${[...ids].join(', ')})`);
    });
    unique(s.members, `${f}.members`, 'member', problems);
    if (s.composition === 'single' && s.members.length !== 1) problems.add(`${f}.members`, 'a single set has exactly one member');
    s.exports.forEach((ex, j) => {
      if (!exportNames.includes(ex)) problems.add(`${f}.exports[${j}]`, `unknown export ${JSON.stringify(ex)} (exports: ${exportNames.join(', ') || 'none'})`);
      const other = owner.get(ex);
      if (other !== undefined) problems.add(`${f}.exports[${j}]`, `export ${JSON.stringify(ex)} already belongs to set ${JSON.stringify(other)}`);
      else owner.set(ex, s.name);
    });
  });
  unique(cluster.sets.map((s) => s.name), `${field}.sets`, 'set', problems, (i) => `${field}.sets[${i}].name`);
  // The cluster's own election (who writes the configuration) is held under the cluster's name.
  cluster.sets.forEach((s, i) => {
    if (s.name === cluster.name) problems.add(`${field}.sets[${i}].name`, `must differ from the cluster's name (${JSON.stringify(cluster.name)}): the cluster set has it`);
  });
  checkNetworks(cluster, problems);
}

function unique(names: readonly string[], field: string, what: string, problems: Problems, fieldOf = (i: number) => `${field}[${i}]`): void {
  const seen = new Set<string>();
  names.forEach((n, i) => {
    if (seen.has(n)) problems.add(fieldOf(i), `${what} ${JSON.stringify(n)} is listed twice`);
    seen.add(n);
  });
}
