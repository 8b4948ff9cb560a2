import type { Problems } from './errors.js';
import { parsePeerAddress, parseSubnet } from './net-address.js';
import { DEFAULT_PEER_PORT, DEFAULT_TTL_SECONDS, type Cluster, type ClusterConfig, type FailoverSetConfig, type HealthConfig, type NetworkConfig } from './schema/cluster.js';
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
      ...membersOf(s, section.sets),
      exports: s.exports,
      nbd: { listen: (s.nbd?.listen ?? []).map((l) => toListenAddress(l) as TcpListen) },
      ...(s.serviceAddress && { serviceAddress: s.serviceAddress }),
    })),
  };
}

/**
 * A set's member ids. A hierarchical set names sets instead (e.g. one per chassis, inside a
 * cluster-wide set): its members are theirs, set by set in its order, so a Primary's
 * Secondary is looked for in the Primary's own set first (policy/set-policy.ts). Names that
 * are not sets, and sets met twice on the way down (a cycle), are left out here and reported
 * by checkCluster.
 */
/** The sets a hierarchical set is made of; the stored form (a normalized configuration read again) lists them in `children`. */
const setNames = (s: Section['sets'][number]): readonly string[] => s.children?.map((c) => c.set) ?? s.members;

function membersOf(s: Section['sets'][number], sets: Section['sets']): Pick<FailoverSetConfig, 'members' | 'children'> {
  if (s.composition !== 'hierarchical') return { members: s.members };
  const expand = (names: readonly string[], path: readonly string[]): string[] =>
    names.flatMap((name) => {
      const child = sets.find((c) => c.name === name);
      if (!child || path.includes(name)) return [];
      return child.composition === 'hierarchical' ? expand(setNames(child), [...path, name]) : [...child.members];
    });
  const names = setNames(s);
  const children = names.map((name) => ({ set: name, members: expand([name], [s.name]) }));
  return { members: children.flatMap((c) => c.members), children };
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
    if (s.children) checkChildren(cluster, s, f, problems);
    else {
      s.members.forEach((id, j) => {
        if (!ids.has(id)) problems.add(`${f}.members[${j}]`, `unknown member ${JSON.stringify(id)} (cluster.members: ${[...ids].join(', ')})`);
      });
      unique(s.members, `${f}.members`, 'member', problems);
    }
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

/** A hierarchical set: two or more sets, each known, none containing it, no member in two of them. */
function checkChildren(cluster: ClusterConfig, s: FailoverSetConfig, f: string, problems: Problems): void {
  const children = s.children ?? [];
  if (children.length < 2) problems.add(`${f}.members`, 'a hierarchical set is made of two or more sets');
  const contains = (name: string, seen: readonly string[]): boolean => {
    const set = cluster.sets.find((c) => c.name === name);
    if (!set?.children) return false;
    return set.children.some((c) => c.set === s.name || (!seen.includes(c.set) && contains(c.set, [...seen, c.set])));
  };
  children.forEach((c, j) => {
    if (!cluster.sets.some((x) => x.name === c.set)) {
      problems.add(`${f}.members[${j}]`, `unknown set ${JSON.stringify(c.set)}: a hierarchical set's members are sets (sets: ${cluster.sets.map((x) => x.name).join(', ')})`);
    } else if (c.set === s.name || contains(c.set, [c.set])) {
      problems.add(`${f}.members[${j}]`, `set ${JSON.stringify(c.set)} contains ${JSON.stringify(s.name)}: sets cannot contain each other`);
    }
    const earlier = children.slice(0, j).find((e) => e.members.some((m) => c.members.includes(m)));
    if (earlier) problems.add(`${f}.members[${j}]`, `sets ${JSON.stringify(earlier.set)} and ${JSON.stringify(c.set)} share a member: a member is in one of a hierarchical set's sets`);
  });
}

function unique(names: readonly string[], field: string, what: string, problems: Problems, fieldOf = (i: number) => `${field}[${i}]`): void {
  const seen = new Set<string>();
  names.forEach((n, i) => {
    if (seen.has(n)) problems.add(fieldOf(i), `${what} ${JSON.stringify(n)} is listed twice`);
    seen.add(n);
  });
}
