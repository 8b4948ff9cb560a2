import { canonicalJson } from '../failover/config/canonical.js';
import { subtree } from '../failover/config/device-graph.js';
import type { ConfigDiff } from '../failover/config/diff.js';
import { ConfigError, type ConfigProblem } from '../failover/config/errors.js';
import type { ValidatedConfig } from '../failover/config/validate.js';
import type { InUse } from './ports.js';

/** Sections a running member cannot take over live: they change what the member is or how it is reached. */
const RESTART_ONLY = new Set(['member', 'dataDir', 'api', 'cluster', 'nbd', 'iscsi', 'iscsi.discoveryChap']);

/**
 * A valid configuration that the running member cannot take over live (it would drop
 * clients that did not ask for it, or lose data); nothing was changed. A restart, or
 * another change first (disconnecting the clients, removing the export), makes it.
 */
export class ReloadRefused extends ConfigError {
  override readonly name: string = 'ReloadRefused';
}

/**
 * Why `next` cannot replace `before` while these clients are connected, one problem per
 * refused change (none: it can). A change is refused when it would
 * - change a section only a restart takes (the member's name, data directory, API, cluster,
 *   NBD and iSCSI settings other than listeners and targets, iSCSI discovery CHAP);
 * - rebuild a device tree that holds a memory device the change does not touch (its
 *   contents would be lost);
 * - change an export, or rebuild the device tree under it (its geometry, its layers), while
 *   clients have it open: they would see the device change under them;
 * - change an iSCSI target (its LUNs, portals, CHAP) while initiators are logged in to it;
 * - add, change or remove a shared-nothing (`replicated`) device.
 * Removing an export or a target is never refused: its clients are disconnected cleanly.
 */
export function reloadRefusals(diff: ConfigDiff, before: ValidatedConfig, next: ValidatedConfig, inUse: InUse): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const section of diff.sections) if (RESTART_ONLY.has(section)) problems.push({ field: section, problem: 'changes only when the member restarts' });
  for (const name of diff.memoryLost) {
    problems.push({
      field: next.graph.get(name)!.field,
      problem: `memory device ${name} would lose its contents: this change rebuilds the device tree it is in (make it when the member restarts)`,
    });
  }

  // A shared-nothing replica is served to the set's Primary by the replication port, and the
  // mirror over the replicas follows the set's role: both are set up when the member starts.
  const rebuilt = [...diff.closedTrees.flatMap((top) => subtree(before.graph, top).map((d) => before.graph.get(d)!)), ...diff.builtTrees.flatMap((top) => subtree(next.graph, top).map((d) => next.graph.get(d)!))];
  for (const name of new Set(rebuilt.filter((v) => v.spec.type === 'replicated').map((v) => v.spec.name))) {
    const v = next.graph.get(name) ?? before.graph.get(name)!;
    problems.push({ field: v.field, problem: `replicated device ${name} is added, changed or removed only when the member restarts (its replica is exported to the set's Primary, its mirror follows the set's role)` });
  }

  const clients = count(inUse.exports);
  const closed = new Set(diff.closedTrees.flatMap((top) => subtree(before.graph, top)));
  next.config.exports.forEach((e, i) => {
    const open = clients.get(e.name) ?? 0;
    const old = before.config.exports.find((o) => o.name === e.name);
    if (open === 0 || !old || !diff.droppedExports.includes(e.name)) return;
    const held = `${open} client${open === 1 ? ' has' : 's have'} it open`;
    if (diff.exports.changed.includes(e.name)) {
      problems.push({ field: `exports[${i}]`, problem: `export ${e.name} changes (${changedKeys(old, e)}) while ${held}: disconnect them or remove the export first` });
      return;
    }
    if (closed.has(old.device)) {
      const changes = subtree(before.graph, old.device).flatMap((d) => deviceChanges(d, before, next));
      problems.push({
        field: `exports[${i}]`,
        problem: `the device under export ${e.name} would be rebuilt (${changes.join('; ') || 'its device tree changes'}) while ${held}: its geometry and contents must not change under them; disconnect them or remove the export first`,
      });
    }
  });

  const sessions = count(inUse.targets);
  (next.config.iscsi?.targets ?? []).forEach((t, i) => {
    const open = sessions.get(t.name) ?? 0;
    if (open === 0 || !diff.iscsiTargets.changed.includes(t.name)) return;
    const old = before.config.iscsi!.targets.find((o) => o.name === t.name)!;
    problems.push({
      field: `iscsi.targets[${i}]`,
      problem: `iSCSI target ${t.name} changes (${changedKeys(old, t)}) while ${open} session${open === 1 ? ' is' : 's are'} logged in: log them out or remove the target first`,
    });
  });
  return problems;
}

/** Throw ReloadRefused with every refusal, if there is any. */
export function refuseIfAny(problems: readonly ConfigProblem[]): void {
  if (problems.length > 0) throw new ReloadRefused(problems);
}

function count(names: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const n of names) out.set(n, (out.get(n) ?? 0) + 1);
  return out;
}

/** The keys whose values differ: `size, readOnly`. */
function changedKeys(a: object, b: object): string {
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(x), ...Object.keys(y)])];
  return keys.filter((k) => canonicalJson(x[k] ?? null) !== canonicalJson(y[k] ?? null)).join(', ');
}

/** How one device of a rebuilt tree changes: `d: size 4194304 → 8388608`, `d removed`, or nothing. */
function deviceChanges(name: string, before: ValidatedConfig, next: ValidatedConfig): string[] {
  const a = before.graph.get(name)?.spec as Record<string, unknown> | undefined;
  const b = next.graph.get(name)?.spec as Record<string, unknown> | undefined;
  if (!a) return [];
  if (!b) return [`${name} removed`];
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => canonicalJson(a[k] ?? null) !== canonicalJson(b[k] ?? null));
  return keys.map((k) => `${name}.${k} ${show(a[k])} → ${show(b[k])}`);
}

function show(v: unknown): string {
  return v === undefined ? '(unset)' : JSON.stringify(v);
}
