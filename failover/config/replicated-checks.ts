import type { ValidatedSpec } from './device-graph.js';
import type { Problems } from './errors.js';
import type { FailoverSetConfig } from './schema/cluster.js';
import type { MemberConfig } from './schema/member-config.js';

/**
 * A `replicated` (shared-nothing) device lives in a failover set: every member of the set
 * keeps one replica and the set's Primary mirrors across them. So it must be the device of
 * an export of exactly one set (no layer above it: the Primary serves it as it is), every
 * member of that set needs a replication listener, and `paths` may name only those members.
 */
export function checkReplicated(graph: ReadonlyMap<string, ValidatedSpec>, config: MemberConfig, problems: Problems): void {
  const parents = new Map<string, string>();
  for (const [name, v] of graph) for (const child of v.children) parents.set(child, name);
  for (const { spec, field } of graph.values()) {
    if (spec.type !== 'replicated') continue;
    if (!config.cluster) {
      problems.add(field, `a replicated device needs a cluster section: its replicas are the members of the failover set that exports it`);
      continue;
    }
    const parent = parents.get(spec.name);
    if (parent !== undefined) problems.add(field, `a replicated device is served as it is by its set's Primary: it cannot be wrapped by ${JSON.stringify(parent)}`);
    const sets = setsOf(spec.name, config);
    if (sets.length !== 1) {
      const exports = config.exports.filter((e) => e.device === spec.name).map((e) => e.name);
      problems.add(
        field,
        exports.length === 0
          ? `no export serves replicated device ${JSON.stringify(spec.name)}: export it, and list the export in one failover set`
          : `the exports of replicated device ${JSON.stringify(spec.name)} (${exports.join(', ')}) must all belong to one failover set (now: ${sets.map((s) => s.name).join(', ') || 'none'})`,
      );
      continue;
    }
    const set = sets[0]!;
    if (set.members.length < 2) problems.add(field, `set ${JSON.stringify(set.name)} has one member: a replicated device needs two or more (one replica each)`);
    for (const id of set.members) {
      const i = config.cluster.members.findIndex((m) => m.id === id);
      if (i >= 0 && config.cluster.members[i]!.replication === undefined) {
        problems.add(`cluster.members[${i}].replication`, `member ${id} keeps a replica of ${JSON.stringify(spec.name)} (set ${JSON.stringify(set.name)}): give the HOST:PORT its peers reach it on`);
      }
    }
    for (const id of Object.keys(spec.paths ?? {})) {
      if (!set.members.includes(id)) problems.add(`${field}.paths.${id}`, `${id} is not a member of set ${JSON.stringify(set.name)} (members: ${set.members.join(', ')})`);
    }
  }
}

/** The failover sets whose exports serve device `name`. */
export function setsOf(device: string, config: MemberConfig): FailoverSetConfig[] {
  const exports = new Set(config.exports.filter((e) => e.device === device).map((e) => e.name));
  return (config.cluster?.sets ?? []).filter((s) => s.exports.some((e) => exports.has(e)));
}
