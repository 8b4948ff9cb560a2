import { parseNbdAddress } from '../../fabric/backends/nbd-client/address.js';
import { NbdClient, type NbdClientOptions } from '../../fabric/backends/nbd-client/client.js';
import { MultipathDevice, type MultipathTuning } from '../../fabric/layers/multipath/multipath.js';
import type { SpecOf } from '../../failover/config/schema/devices.js';
import type { DeviceFactory } from './context.js';

/**
 * Remote NBD disks and path failover sets. `type: nbd` with `paths` builds one client per
 * address under a multipath layer: paths that are down at start are built detached and
 * join once they answer a probe; at least one must answer.
 */

function tuning(spec: SpecOf<'nbd'> | SpecOf<'multipath'>): MultipathTuning {
  return {
    policy: spec.policy,
    failback: spec.failback,
    noPathRetryMs: spec.noPathRetryMs,
    probeIntervalMs: spec.probeIntervalMs,
    marginal: spec.marginal,
  };
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

export const createNbd: DeviceFactory<'nbd'> = async (spec) => {
  if (spec.paths === undefined) return NbdClient.open(clientOptions(spec, spec.name, spec.address!));
  const options = spec.paths.map((a, i) => clientOptions(spec, `${spec.name}.path${i}`, a));
  const opened = await Promise.allSettled(options.map((o) => NbdClient.open(o)));
  const up = opened.find((r): r is PromiseFulfilledResult<NbdClient> => r.status === 'fulfilled');
  if (!up) throw (opened[0] as PromiseRejectedResult).reason;
  const paths = opened.map((r, i) => (r.status === 'fulfilled' ? r.value : NbdClient.detached(options[i]!, up.value.geometry)));
  try {
    return new MultipathDevice({ name: spec.name, paths, ...tuning(spec) });
  } catch (err) {
    await Promise.allSettled(paths.map((p) => p.close()));
    throw err;
  }
};

export const createMultipath: DeviceFactory<'multipath'> = async (spec, context, field) => {
  const paths = await Promise.all(spec.paths.map((n, i) => context.use(n, `${field}.paths[${i}]`)));
  return new MultipathDevice({ name: spec.name, paths, ...tuning(spec) });
};
