import type { BlockDevice } from '../../fabric/device.js';
import { topDevices } from '../../failover/config/device-graph.js';
import { validateDevices } from '../../failover/config/validate.js';
import { buildDevices } from '../../member/devices/build.js';
import { runAction } from '../../failover/action.js';
import { buildFailoverSets } from '../../failover/from-graph.js';
import type { FailoverSets } from '../../failover/sets.js';
import type { FailoverSet } from '../../failover/set.js';

interface Tap {
  teardown(fn: () => unknown): void;
}

/**
 * A device graph with its failover sets running, as a member builds them. At teardown the
 * sets stop and the graph's top devices close (each closes what it wraps).
 */
export async function buildWithSets(t: Tap, specs: readonly unknown[], dataDir: string): Promise<{ graph: Map<string, BlockDevice>; sets: FailoverSets }> {
  const validated = validateDevices(specs);
  const graph = await buildDevices(validated, { dataDir });
  const sets = buildFailoverSets(graph, validated);
  sets.start();
  t.teardown(async () => {
    sets.stop();
    await sets.settled();
    await Promise.allSettled(topDevices(validated).map((name) => graph.get(name)!.close()));
  });
  return { graph, sets };
}

export function setNamed(sets: FailoverSets, name: string): FailoverSet {
  const set = sets.get(name);
  if (!set) throw new Error(`no failover set ${name}`);
  return set;
}

/** Member states of a set, in order. */
export function memberStates(set: FailoverSet): string[] {
  return set.state().members.map((m) => m.state);
}

export function act(set: FailoverSet, action: string, body: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  return runAction(set.actions, set.name, action, body);
}
