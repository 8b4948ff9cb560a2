import { canonicalJson } from './canonical.js';
import { subtree, topDevices, type ValidatedSpec } from './device-graph.js';
import type { MemberConfig } from './schema/member-config.js';
import type { ValidatedConfig } from './validate.js';

/**
 * What changes between two configurations, in the terms a running member applies them. The
 * unit of rebuilding is a device tree (a top device and everything below it): a layer holds
 * its children and closes them with itself, so a change anywhere in a tree closes the old
 * tree and builds the new one, and the exports of that tree drop their clients. Trees and
 * exports that did not change keep running and keep their clients.
 */
export interface ConfigDiff {
  readonly devices: Changes;
  /** Top devices of the running trees to close (removed or changed trees). */
  readonly closedTrees: readonly string[];
  /** Top devices of the new trees to build (added or changed trees), in declaration order. */
  readonly builtTrees: readonly string[];
  /**
   * Memory devices that did not change but sit in a tree that is rebuilt: rebuilding would
   * lose what they hold, so such a change is refused live.
   */
  readonly memoryLost: readonly string[];
  readonly exports: Changes;
  /** Exports whose clients are disconnected: removed, changed, or over a rebuilt tree. */
  readonly droppedExports: readonly string[];
  readonly iscsiTargets: Changes;
  /** Sections that changed as a whole: `nbd.listen`, `nbd` (the rest of it), `iscsi` (all but targets), `iscsi.discoveryChap`, `api`, `cluster`, `member`, `dataDir`. */
  readonly sections: readonly string[];
  /** Nothing differs. */
  readonly empty: boolean;
}

export interface Changes {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly string[];
}

function changes<T>(before: ReadonlyMap<string, T>, after: ReadonlyMap<string, T>): Changes {
  const same = (a: T, b: T) => canonicalJson(a) === canonicalJson(b);
  return {
    added: [...after.keys()].filter((k) => !before.has(k)),
    removed: [...before.keys()].filter((k) => !after.has(k)),
    changed: [...after.keys()].filter((k) => before.has(k) && !same(before.get(k)!, after.get(k)!)),
  };
}

const specsOf = (graph: ReadonlyMap<string, ValidatedSpec>) => new Map([...graph].map(([name, v]) => [name, v.spec]));

export function diffConfigs(before: ValidatedConfig, after: ValidatedConfig): ConfigDiff {
  const devices = changes(specsOf(before.graph), specsOf(after.graph));
  const touched = new Set([...devices.added, ...devices.removed, ...devices.changed]);
  const oldTops = topDevices(before.graph);
  const newTops = topDevices(after.graph);
  // A tree is kept when it is a tree in both and none of its devices changed (nor joined or left it).
  const sameTree = (top: string) =>
    oldTops.includes(top) && newTops.includes(top) && canonicalJson(subtree(before.graph, top)) === canonicalJson(subtree(after.graph, top)) && !subtree(after.graph, top).some((d) => touched.has(d));
  const closedTrees = oldTops.filter((t) => !sameTree(t));
  const builtTrees = newTops.filter((t) => !sameTree(t));
  const rebuiltDevices = new Set(builtTrees.flatMap((t) => subtree(after.graph, t)));
  const closedDevices = new Set(closedTrees.flatMap((t) => subtree(before.graph, t)));
  const memoryLost = [...rebuiltDevices].filter((d) => closedDevices.has(d) && !touched.has(d) && after.graph.get(d)!.spec.type === 'memory');

  const exportsOf = (c: MemberConfig) => new Map(c.exports.map((e) => [e.name, e]));
  const exports = changes(exportsOf(before.config), exportsOf(after.config));
  const dropped = new Set([...exports.removed, ...exports.changed]);
  for (const e of before.config.exports) if (closedDevices.has(e.device)) dropped.add(e.name);

  const targetsOf = (c: MemberConfig) => new Map((c.iscsi?.targets ?? []).map((t) => [t.name, t]));
  const iscsiTargets = changes(targetsOf(before.config), targetsOf(after.config));

  const sections: string[] = [];
  const differs = (a: unknown, b: unknown) => canonicalJson(a ?? null) !== canonicalJson(b ?? null);
  const b = before.config;
  const a = after.config;
  if (differs(b.member, a.member)) sections.push('member');
  if (differs(b.dataDir, a.dataDir)) sections.push('dataDir');
  // Listeners are reconciled live; the rest of the NBD and iSCSI sections (TLS, limits, timeouts) is not.
  const { listen: nbdBefore, ...nbdRestBefore } = b.nbd;
  const { listen: nbdAfter, ...nbdRestAfter } = a.nbd;
  if (differs(nbdBefore, nbdAfter)) sections.push('nbd.listen');
  if (differs(nbdRestBefore, nbdRestAfter)) sections.push('nbd');
  const { targets: _targetsBefore, discoveryChap: chapBefore, ...iscsiRestBefore } = b.iscsi ?? { targets: [] };
  const { targets: _targetsAfter, discoveryChap: chapAfter, ...iscsiRestAfter } = a.iscsi ?? { targets: [] };
  if (differs(chapBefore, chapAfter)) sections.push('iscsi.discoveryChap');
  if (differs(iscsiRestBefore, iscsiRestAfter)) sections.push('iscsi');
  if (differs(b.api, a.api)) sections.push('api');
  if (differs(b.cluster, a.cluster)) sections.push('cluster');

  const all = [devices, exports, iscsiTargets].flatMap((c) => [...c.added, ...c.removed, ...c.changed]);
  return {
    devices,
    closedTrees,
    builtTrees,
    memoryLost,
    exports,
    droppedExports: [...dropped],
    iscsiTargets,
    sections,
    empty: all.length === 0 && sections.length === 0,
  };
}

/** One line per change, for the CLI and logs: `+ device d3 [memory]`, `~ export e1`, `- target iqn…`. */
export function describeDiff(diff: ConfigDiff): string[] {
  if (diff.empty) return ['no changes'];
  const lines: string[] = [];
  const list = (what: string, c: Changes) => {
    for (const n of c.added) lines.push(`+ ${what} ${n}`);
    for (const n of c.changed) lines.push(`~ ${what} ${n}`);
    for (const n of c.removed) lines.push(`- ${what} ${n}`);
  };
  list('device', diff.devices);
  // A tree rebuilt for a change below its top (a replica added, a leaf resized).
  for (const t of diff.builtTrees) if (!diff.devices.added.includes(t) && !diff.devices.changed.includes(t)) lines.push(`~ device tree ${t} (rebuilt)`);
  list('export', diff.exports);
  const implied = diff.droppedExports.filter((n) => !diff.exports.removed.includes(n) && !diff.exports.changed.includes(n));
  for (const n of implied) lines.push(`~ export ${n} (its device is rebuilt: clients reconnect)`);
  list('iscsi target', diff.iscsiTargets);
  for (const s of diff.sections) lines.push(`~ ${s}`);
  return lines;
}
