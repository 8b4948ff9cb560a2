import { ConcatDevice } from '../../fabric/layers/concat.js';
import { MirrorDevice } from '../../fabric/layers/mirror/mirror.js';
import { StripeDevice } from '../../fabric/layers/stripe.js';
import { ConfigError } from '../../failover/config/errors.js';
import { bytes, formatBytes } from '../../failover/config/schema/units.js';
import { asConfigError } from './config-errors.js';
import type { DeviceFactory } from './context.js';

export const createMirror: DeviceFactory<'mirror'> = async (spec, context, field) => {
  const names = [...spec.replicas, ...(spec.spares ?? [])];
  const fieldOf = (i: number) => (i < spec.replicas.length ? `${field}.replicas[${i}]` : `${field}.spares[${i - spec.replicas.length}]`);
  const all = await context.useMembers(names, fieldOf);
  const replicas = all.slice(0, spec.replicas.length);
  const spares = all.slice(spec.replicas.length);
  // Sizes learned only now (remote disks, a file's own size): replicas hold the same data,
  // so a mirror over unequal ones would silently lose the larger one's end.
  if (new Set(replicas.map((r) => r.size)).size > 1) {
    throw new ConfigError(
      `${field}.replicas`,
      `replicas of a mirror hold the same data: they must have the same size (${replicas.map((r) => `${r.name}: ${formatBytes(r.size)}`).join(', ')})`,
    );
  }
  return asConfigError(field, () =>
    MirrorDevice.open({
      name: spec.name,
      replicas,
      spares,
      dataDir: context.dataDir,
      readPolicy: spec.readPolicy,
      resync: {
        rateMiBps: spec.resync?.rateMiBps,
        regionSize: spec.resync?.regionSize === undefined ? undefined : bytes(spec.resync.regionSize),
      },
      assumeClean: spec.assumeClean ?? false,
      activityLog:
        spec.activityLog === false
          ? false
          : {
              ...(spec.activityLog?.extentSize !== undefined && { extentSize: bytes(spec.activityLog.extentSize) }),
              ...(spec.activityLog?.extents !== undefined && { extents: spec.activityLog.extents }),
            },
    }),
  );
};

export const createConcat: DeviceFactory<'concat'> = async (spec, context, field) => {
  const devices = await Promise.all(spec.devices.map((n, i) => context.use(n, `${field}.devices[${i}]`)));
  return asConfigError(field, () => new ConcatDevice(spec.name, devices));
};

export const createStripe: DeviceFactory<'stripe'> = async (spec, context, field) => {
  const devices = await Promise.all(spec.devices.map((n, i) => context.use(n, `${field}.devices[${i}]`)));
  return asConfigError(field, () => new StripeDevice(spec.name, devices, bytes(spec.stripeUnit)));
};
