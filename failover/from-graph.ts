/**
 * The failover sets of a built device graph: a mirror set for each `mirror`, a path set for
 * each `multipath` and each `nbd` with `paths`, with the policy fields of their declarations.
 */
import type { BlockDevice } from '../fabric/device.js';
import { MirrorDevice } from '../fabric/layers/mirror/mirror.js';
import { MultipathDevice } from '../fabric/layers/multipath/multipath.js';
import type { ValidatedSpec } from './config/device-graph.js';
import type { MirrorPolicy } from './mirror-set.js';
import type { PathPolicy } from './path-set.js';
import { FailoverSets, type FailoverSetsOptions } from './sets.js';

export function buildFailoverSets(
  devices: ReadonlyMap<string, BlockDevice>,
  graph: ReadonlyMap<string, ValidatedSpec>,
  options: Omit<FailoverSetsOptions, 'devices'> = {},
): FailoverSets {
  const sets = new FailoverSets({ ...options, devices });
  for (const [name, { spec }] of graph) {
    const device = devices.get(name);
    if (device instanceof MirrorDevice && spec.type === 'mirror') {
      const policy: Partial<MirrorPolicy> = {
        ...(spec.failureLimit && { failureLimit: spec.failureLimit }),
        ...(spec.probeIntervalMs !== undefined && { probeIntervalMs: spec.probeIntervalMs }),
      };
      sets.addMirror(device, policy);
    } else if (device instanceof MultipathDevice && (spec.type === 'multipath' || spec.type === 'nbd')) {
      const policy: Partial<PathPolicy> = {
        ...(spec.failback !== undefined && { failback: spec.failback }),
        ...(spec.probeIntervalMs !== undefined && { probeIntervalMs: spec.probeIntervalMs }),
        ...(spec.marginal && { marginal: spec.marginal }),
      };
      sets.addMultipath(device, policy);
    }
  }
  return sets;
}
