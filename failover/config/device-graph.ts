import type { Problems } from './errors.js';
import { childField, childrenOf, type DeviceSpec } from './schema/devices.js';

/** A declared device with the field it came from (`backends[1]`) and the devices it wraps. */
export interface ValidatedSpec {
  readonly spec: DeviceSpec;
  readonly field: string;
  readonly children: readonly string[];
}

/**
 * The devices by name, in declaration order, after the checks that span devices: names
 * are unique, every wrapped device exists and is wrapped by one layer only, no cycles.
 */
export function deviceGraph(specs: readonly DeviceSpec[], fieldOf: (index: number) => string, problems: Problems): Map<string, ValidatedSpec> {
  const graph = new Map<string, ValidatedSpec>();
  specs.forEach((spec, i) => {
    const field = fieldOf(i);
    if (graph.has(spec.name)) return problems.add(`${field}.name`, `device name ${JSON.stringify(spec.name)} is declared twice`);
    graph.set(spec.name, { spec, field, children: childrenOf(spec) });
  });

  const usedBy = new Map<string, string>();
  for (const { spec, field, children } of graph.values()) {
    const inThisOne = new Set<string>();
    children.forEach((child, i) => {
      const where = `${field}.${childField(spec, i)}`;
      if (inThisOne.has(child)) return problems.add(where, `device ${JSON.stringify(child)} is listed twice`);
      inThisOne.add(child);
      if (!graph.has(child)) return problems.add(where, `refers to unknown device ${JSON.stringify(child)} (declared: ${[...graph.keys()].join(', ') || 'none'})`);
      const previous = usedBy.get(child);
      if (previous !== undefined) return problems.add(where, `device ${JSON.stringify(child)} is already used by ${previous}`);
      usedBy.set(child, spec.name);
    });
  }

  // Each device has at most one parent, so a cycle is a walk up the parents that comes back.
  const reported = new Set<string>();
  for (const name of graph.keys()) {
    const path = [name];
    for (let up = usedBy.get(name); up !== undefined; up = usedBy.get(up)) {
      if (up === name) {
        if (!path.some((n) => reported.has(n))) problems.add(graph.get(name)!.field, `devices ${[...path, name].join(' → ')} form a cycle`);
        path.forEach((n) => reported.add(n));
        break;
      }
      if (path.includes(up)) break;
      path.push(up);
    }
  }
  return graph;
}

/** Names of the devices no layer wraps: the tops of the trees. */
export function topDevices(graph: ReadonlyMap<string, ValidatedSpec>): string[] {
  const wrapped = new Set([...graph.values()].flatMap((v) => v.children));
  return [...graph.keys()].filter((n) => !wrapped.has(n));
}

/** Every device of the tree under `top`, top first. */
export function subtree(graph: ReadonlyMap<string, ValidatedSpec>, top: string): string[] {
  const out = [top];
  for (let i = 0; i < out.length; i++) out.push(...(graph.get(out[i]!)?.children ?? []));
  return out;
}
