import type { Problems } from './errors.js';
import { DEFAULT_TTL_SECONDS, type Cluster, type ClusterConfig } from './schema/cluster.js';
import { toListenAddress, type TcpListen } from './schema/listen.js';
import type { Static } from '@sinclair/typebox';

/** The `cluster` section with its defaults, and the checks that span it and the exports. */

export function normalizeCluster(section: Static<typeof Cluster>): ClusterConfig {
  const a = section.arbitration;
  const ttlSeconds = a.type === 'etcd' ? (a.ttlSeconds ?? DEFAULT_TTL_SECONDS) : 0;
  return {
    name: section.name,
    members: section.members,
    arbitration:
      a.type === 'file'
        ? a
        : { type: 'etcd', endpoints: a.endpoints, ttlSeconds, fenceMarginMs: a.fenceMarginMs ?? Math.min(600, ttlSeconds * 300) },
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
}

function unique(names: readonly string[], field: string, what: string, problems: Problems, fieldOf = (i: number) => `${field}[${i}]`): void {
  const seen = new Set<string>();
  names.forEach((n, i) => {
    if (seen.has(n)) problems.add(fieldOf(i), `${what} ${JSON.stringify(n)} is listed twice`);
    seen.add(n);
  });
}
