import { parseNbdAddress } from '../../fabric/backends/nbd-client/address.js';
import { NbdClient, type NbdClientOptions } from '../../fabric/backends/nbd-client/client.js';
import type { BlockDevice } from '../../fabric/device.js';
import { firstGeneration, MultipathDevice, type MultipathOptions } from '../../fabric/layers/multipath/multipath.js';
import type { SpecOf } from '../../failover/config/schema/devices.js';
import type { DeviceFactory } from './context.js';

/**
 * Remote NBD disks and path failover sets. `type: nbd` with `paths` builds one client per
 * address under a multipath layer: paths that are down at start are built detached and
 * join once they answer a probe; at least one must answer. The path set's policy fields
 * (failback, probeIntervalMs, marginal) are its controller's: failover/from-graph.ts.
 */

/** What the data path of a path set takes from its declaration. */
function dataPath(spec: SpecOf<'nbd'> | SpecOf<'multipath'>): Pick<MultipathOptions, 'policy' | 'noPathRetryMs' | 'fencing'> {
  // Opt-in: a token claims the export for this client alone, so a second client with fencing
  // on (another gateway, every member of a cluster set that opens the same backend) would
  // refuse the first.
  return { policy: spec.policy, noPathRetryMs: spec.noPathRetryMs, fencing: spec.type === 'nbd' && spec.fencing === true };
}

function clientOptions(spec: SpecOf<'nbd'>, name: string, address: string): NbdClientOptions {
  return {
    name,
    address: parseNbdAddress(address)!,
    exportName: spec.export ?? '',
    connections: spec.connections,
    timeoutMs: spec.timeoutMs,
    connectTimeoutMs: spec.connectTimeoutMs,
  };
}

/**
 * The first fencing token of a fenced path set, presented from each path's first connection
 * (a connection opened without one could not be fenced later without a reconnect); the
 * multipath layer takes over from there with its own, never smaller, generation.
 */
function firstToken(spec: SpecOf<'nbd'>): Pick<NbdClientOptions, 'fenceToken'> {
  return dataPath(spec).fencing ? { fenceToken: { term: 0, generation: firstGeneration() } } : {};
}

export const createNbd: DeviceFactory<'nbd'> = async (spec) => {
  if (spec.paths === undefined) return NbdClient.open(clientOptions(spec, spec.name, spec.address!));
  const token = firstToken(spec);
  const options = spec.paths.map((a, i) => ({ ...clientOptions(spec, `${spec.name}.path${i}`, a), ...token }));
  const opened = await Promise.allSettled(options.map((o) => NbdClient.open(o)));
  const up = opened.find((r): r is PromiseFulfilledResult<NbdClient> => r.status === 'fulfilled');
  if (!up) throw (opened[0] as PromiseRejectedResult).reason;
  const paths = opened.map((r, i) => (r.status === 'fulfilled' ? r.value : NbdClient.detached(options[i]!, up.value.geometry)));
  try {
    return new MultipathDevice({ name: spec.name, paths, ...dataPath(spec) });
  } catch (err) {
    await Promise.allSettled(paths.map((p) => p.close()));
    throw err;
  }
};

/** A remote disk whose server is down at start, when it is a member of a failover set: shaped like `like`, a reachable sibling. */
export function detachedNbd(spec: SpecOf<'nbd'>, like: BlockDevice): BlockDevice {
  if (spec.paths === undefined) return NbdClient.detached(clientOptions(spec, spec.name, spec.address!), like);
  const token = firstToken(spec);
  const paths = spec.paths.map((a, i) => NbdClient.detached({ ...clientOptions(spec, `${spec.name}.path${i}`, a), ...token }, like));
  return new MultipathDevice({ name: spec.name, paths, ...dataPath(spec) });
}

export const createMultipath: DeviceFactory<'multipath'> = async (spec, context, field) => {
  const paths = await context.useMembers(spec.paths, (i) => `${field}.paths[${i}]`);
  return new MultipathDevice({ name: spec.name, paths, ...dataPath(spec) });
};
