import { isBlockError } from '../errors.js';
import { ConfigError, fields, registerDeviceKind } from '../graph.js';
import { ConcatDevice } from './concat.js';
import { StripeDevice } from './stripe.js';

/** type: concat — devices: [...];  type: stripe — devices: [...], stripeUnit: size. */
registerDeviceKind('concat', {
  validate(spec, field) {
    fields.names(spec, 'devices', field, { min: 2 });
  },
  children(spec) {
    return spec.devices as string[];
  },
  async create(spec, context, field) {
    const names = fields.names(spec, 'devices', field, { min: 2 });
    const devices = await Promise.all(names.map((n, i) => context.use(n, `${field}.devices[${i}]`)));
    return asConfigError(field, () => new ConcatDevice(spec.name, devices));
  },
});

registerDeviceKind('stripe', {
  validate(spec, field) {
    fields.names(spec, 'devices', field, { min: 2 });
    const unit = fields.size(spec, 'stripeUnit', field)!;
    if (unit === 0 || (unit & (unit - 1)) !== 0) throw new ConfigError(`${field}.stripeUnit`, `must be a power of two (got ${unit})`);
  },
  children(spec) {
    return spec.devices as string[];
  },
  async create(spec, context, field) {
    const names = fields.names(spec, 'devices', field, { min: 2 });
    const unit = fields.size(spec, 'stripeUnit', field)!;
    const devices = await Promise.all(names.map((n, i) => context.use(n, `${field}.devices[${i}]`)));
    return asConfigError(field, () => new StripeDevice(spec.name, devices, unit));
  },
});

/** Geometry problems found once the children exist are still the config's fault. */
function asConfigError<T>(field: string, build: () => T): T {
  try {
    return build();
  } catch (err) {
    if (isBlockError(err) && err.code === 'EINVAL') throw new ConfigError(field, err.message.replace(/^EINVAL: /, ''));
    throw err;
  }
}
