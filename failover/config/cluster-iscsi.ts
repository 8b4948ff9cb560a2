import type { Problems } from './errors.js';
import type { ClusterConfig, FailoverSetConfig } from './schema/cluster.js';
import type { IscsiConfig, IscsiTargetConfig } from './schema/iscsi.js';

/**
 * iSCSI targets across cluster members: a target whose LUNs are a failover set's exports is
 * served by every member of the set, each on its own portal group (`portalGroups[].member`);
 * the Primary's groups are active/optimized, the others standby, and a login at a
 * non-Primary is redirected to the Primary's portal (or accepted on a standby path).
 */

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]']);

/** The failover set a target moves with (the set of its LUNs' exports), if any. */
export function setOfTarget(target: Pick<IscsiTargetConfig, 'luns'>, cluster: ClusterConfig | undefined): FailoverSetConfig | undefined {
  if (!cluster) return undefined;
  for (const l of target.luns) {
    const set = cluster.sets.find((s) => s.exports.includes(l.export));
    if (set) return set;
  }
  return undefined;
}

export function checkClusterIscsi(iscsi: IscsiConfig, cluster: ClusterConfig | undefined, problems: Problems): void {
  const memberIds = new Set(cluster?.members.map((m) => m.id) ?? []);
  iscsi.targets.forEach((t, i) => {
    const field = `iscsi.targets[${i}]`;
    if (!cluster) {
      t.portalGroups.forEach((g, j) => {
        if (g.member !== undefined) problems.add(`${field}.portalGroups[${j}].member`, 'names a cluster member, but there is no cluster section');
      });
      return;
    }
    const set = setOfTarget(t, cluster);
    t.luns.forEach((l, j) => {
      const own = cluster.sets.find((s) => s.exports.includes(l.export));
      if (own !== set) {
        problems.add(
          `${field}.luns[${j}].export`,
          `export ${JSON.stringify(l.export)} is ${own ? `in set ${JSON.stringify(own.name)}` : 'in no failover set'}, the target's first LUN ${set ? `in set ${JSON.stringify(set.name)}` : 'in none'}: a target moves with one set`,
        );
      }
    });
    if (!set) {
      t.portalGroups.forEach((g, j) => {
        if (g.member !== undefined && !memberIds.has(g.member)) problems.add(`${field}.portalGroups[${j}].member`, `unknown member ${JSON.stringify(g.member)} (cluster.members: ${[...memberIds].join(', ')})`);
      });
      return;
    }
    const served = new Set<string>();
    t.portalGroups.forEach((g, j) => {
      const f = `${field}.portalGroups[${j}]`;
      if (g.member === undefined) {
        problems.add(`${f}.member`, `target of set ${JSON.stringify(set.name)}: say which member serves this group (one of ${set.members.join(', ')})`);
        return;
      }
      if (!set.members.includes(g.member)) {
        problems.add(`${f}.member`, `${JSON.stringify(g.member)} is not a member of set ${JSON.stringify(set.name)} (${set.members.join(', ')})`);
        return;
      }
      served.add(g.member);
      if (t.standbyLogin !== 'accept') {
        g.portals.forEach((p, k) => {
          if (WILDCARDS.has(p.host) || p.port === 0) {
            problems.add(`${f}.portals[${k}]`, `other members redirect logins here: give the portal's own address and port (not ${p.host}:${p.port})`);
          }
        });
      }
    });
    for (const m of set.members) {
      if (!served.has(m)) problems.add(`${field}.portalGroups`, `member ${JSON.stringify(m)} of set ${JSON.stringify(set.name)} has no portal group: as Primary it would serve this target nowhere`);
    }
    if (t.aluaPolicy === 'active-active' && served.size > 1) {
      problems.add(
        `${field}.aluaPolicy`,
        'active-active across cluster members is refused: persistent reservations and COMPARE AND WRITE are kept by the member that serves them, so two members writing one LUN at once would break both; use active-passive (the Primary active/optimized, the others standby)',
      );
    }
  });
}
