/**
 * The 'nbd' device kind: a disk on a remote NBD server.
 *
 *   { name, type: nbd, address: "host:port" | "unix:/path", export?, connections?,
 *     timeoutMs?, connectTimeoutMs? }
 *   { name, type: nbd, paths: ["unix:/a.sock", "10.0.0.2:10809"], policy, failback, … }
 *
 * With `paths`, one client per address under a multipath layer (see multipath-kind.ts for
 * the tuning fields). Paths that are down at start are built detached and join once they
 * answer a probe; at least one must answer.
 */
import { ConfigError, fields, registerDeviceKind, type DeviceSpec } from '../graph.js';
import { readMultipathTuning } from '../layers/multipath-kind.js';
import { MultipathDevice } from '../layers/multipath/multipath.js';
import { parseNbdAddress, type NbdAddress } from './nbd-client/address.js';
import { NbdClient, type NbdClientOptions } from './nbd-client/client.js';

function addresses(spec: DeviceSpec, field: string): NbdAddress[] {
  const single = spec.address;
  const many = spec.paths;
  if ((single === undefined) === (many === undefined)) throw new ConfigError(field, 'needs either address or paths');
  const list = single !== undefined ? [single] : many;
  const key = single !== undefined ? 'address' : 'paths';
  if (!Array.isArray(list) || list.length === 0) throw new ConfigError(`${field}.paths`, 'must be a non-empty list of addresses');
  return list.map((text, i) => {
    const where = single !== undefined ? `${field}.address` : `${field}.${key}[${i}]`;
    const address = typeof text === 'string' ? parseNbdAddress(text) : undefined;
    if (!address) throw new ConfigError(where, `must be "host:port" or "unix:/path" (got ${JSON.stringify(text)})`);
    return address;
  });
}

function clientOptions(spec: DeviceSpec, field: string, name: string, address: NbdAddress): NbdClientOptions {
  return {
    name,
    address,
    exportName: spec.export === undefined ? '' : (fields.string(spec, 'export', field) as string),
    connections: fields.number(spec, 'connections', field, { required: false, min: 1, max: 64 }),
    timeoutMs: fields.number(spec, 'timeoutMs', field, { required: false, min: 1 }),
    connectTimeoutMs: fields.number(spec, 'connectTimeoutMs', field, { required: false, min: 1 }),
  };
}

registerDeviceKind('nbd', {
  validate(spec, field) {
    const list = addresses(spec, field);
    clientOptions(spec, field, spec.name, list[0]!);
    if (spec.paths !== undefined) readMultipathTuning(spec, field);
  },
  async create(spec, _context, field) {
    const list = addresses(spec, field);
    if (spec.paths === undefined) return NbdClient.open(clientOptions(spec, field, spec.name, list[0]!));

    const options = list.map((a, i) => clientOptions(spec, field, `${spec.name}.path${i}`, a));
    const opened = await Promise.allSettled(options.map((o) => NbdClient.open(o)));
    const up = opened.find((r): r is PromiseFulfilledResult<NbdClient> => r.status === 'fulfilled');
    if (!up) throw (opened[0] as PromiseRejectedResult).reason;
    const paths = opened.map((r, i) => (r.status === 'fulfilled' ? r.value : NbdClient.detached(options[i]!, up.value.geometry)));
    try {
      return new MultipathDevice({ name: spec.name, paths, ...readMultipathTuning(spec, field) });
    } catch (err) {
      await Promise.allSettled(paths.map((p) => p.close()));
      throw err;
    }
  },
});
