import { isBlockError } from '../errors.js';
import { ConfigError, fields, registerDeviceKind, type DeviceSpec } from '../graph.js';
import { MirrorDevice, type MirrorOptions } from './mirror/mirror.js';
import { READ_POLICIES } from './mirror/read-policy.js';

/**
 * type: mirror — replicas: [dev, dev, …], spares: [dev…], readPolicy, resync: { rateMiBps,
 * regionSize }, failureLimit: { failures, windowMs }, probeIntervalMs.
 */
function parse(spec: DeviceSpec, field: string): Omit<MirrorOptions, 'replicas' | 'spares' | 'dataDir'> & { replicas: string[]; spares: string[] } {
  const replicas = fields.names(spec, 'replicas', field);
  if (replicas.length < 2) throw new ConfigError(`${field}.replicas`, 'a mirror needs at least 2 replicas');
  const spares = fields.names(spec, 'spares', field, { required: false });
  const all = [...replicas, ...spares];
  const twice = all.find((n, i) => all.indexOf(n) !== i);
  if (twice) throw new ConfigError(field, `device ${JSON.stringify(twice)} is listed twice`);
  const readPolicy = fields.oneOf(spec, 'readPolicy', field, READ_POLICIES, 'least-loaded');
  const resync = section(spec, 'resync', field);
  const rateMiBps = resync && fields.number(resync, 'rateMiBps', `${field}.resync`, { required: false, min: 0 });
  const regionSize = resync && fields.size(resync, 'regionSize', `${field}.resync`, false);
  if (regionSize !== undefined && (regionSize < 4096 || (regionSize & (regionSize - 1)) !== 0)) {
    throw new ConfigError(`${field}.resync.regionSize`, 'must be a power of two of at least 4096');
  }
  const limit = section(spec, 'failureLimit', field);
  const failureLimit = limit && {
    failures: fields.number(limit, 'failures', `${field}.failureLimit`, { min: 0 })!,
    windowMs: fields.number(limit, 'windowMs', `${field}.failureLimit`, { min: 1 })!,
  };
  const probeIntervalMs = fields.number(spec, 'probeIntervalMs', field, { required: false, min: 0 });
  return {
    name: spec.name,
    replicas,
    spares,
    readPolicy,
    resync: { rateMiBps, regionSize },
    failureLimit,
    probeIntervalMs,
  };
}

/** A nested object of the spec, read with the same field helpers. */
function section(spec: DeviceSpec, key: string, field: string): DeviceSpec | undefined {
  const v = spec[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`${field}.${key}`, 'must be a mapping');
  return { name: spec.name, type: spec.type, ...(v as Record<string, unknown>) };
}

registerDeviceKind('mirror', {
  validate(spec, field) {
    parse(spec, field);
  },
  children(spec) {
    return [...(spec.replicas as string[]), ...((spec.spares as string[] | undefined) ?? [])];
  },
  async create(spec, context, field) {
    const options = parse(spec, field);
    const replicas = await Promise.all(options.replicas.map((n, i) => context.use(n, `${field}.replicas[${i}]`)));
    const spares = await Promise.all(options.spares.map((n, i) => context.use(n, `${field}.spares[${i}]`)));
    try {
      return await MirrorDevice.open({ ...options, replicas, spares, dataDir: context.dataDir });
    } catch (err) {
      // Geometry problems found once the children exist are still the config's fault.
      if (isBlockError(err) && err.code === 'EINVAL') throw new ConfigError(field, err.message.replace(/^EINVAL: /, ''));
      throw err;
    }
  },
});
