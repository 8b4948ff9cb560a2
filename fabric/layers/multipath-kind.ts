/**
 * The 'multipath' device kind: a path failover set over devices declared elsewhere.
 *
 *   { name, type: multipath, paths: [devA, devB], policy: active-passive | active-active,
 *     failback: manual | immediate | <seconds>, noPathRetryMs, probeIntervalMs,
 *     marginal: { failures, windowMs } }
 *
 * `readMultipathTuning` is shared with the 'nbd' kind, whose `paths` spelling builds the
 * same layer over one NBD client per address.
 */
import { ConfigError, fields, registerDeviceKind, type DeviceSpec } from '../graph.js';
import { MultipathDevice, type Failback, type MultipathTuning } from './multipath/multipath.js';

export function readMultipathTuning(spec: DeviceSpec, field: string): MultipathTuning {
  const policy = fields.oneOf(spec, 'policy', field, ['active-passive', 'active-active'] as const, 'active-passive');
  let failback: Failback | undefined;
  const fb = spec.failback;
  if (fb === 'manual' || fb === 'immediate') failback = fb;
  else if (typeof fb === 'number' && Number.isFinite(fb) && fb >= 0) failback = fb;
  else if (fb !== undefined) throw new ConfigError(`${field}.failback`, `must be manual, immediate or a number of seconds (got ${JSON.stringify(fb)})`);
  const noPathRetryMs = fields.number(spec, 'noPathRetryMs', field, { required: false, min: 0 });
  const probeIntervalMs = fields.number(spec, 'probeIntervalMs', field, { required: false, min: 10 });
  let marginal: MultipathTuning['marginal'];
  if (spec.marginal !== undefined) {
    const m = spec.marginal as Record<string, unknown> | null;
    if (typeof m !== 'object' || m === null) throw new ConfigError(`${field}.marginal`, 'must be { failures, windowMs }');
    const sub = { name: spec.name, type: spec.type, ...m } as DeviceSpec;
    marginal = {
      failures: fields.number(sub, 'failures', `${field}.marginal`, { min: 1 })!,
      windowMs: fields.number(sub, 'windowMs', `${field}.marginal`, { min: 1 })!,
    };
  }
  return { policy, failback, noPathRetryMs, probeIntervalMs, marginal };
}

registerDeviceKind('multipath', {
  validate(spec, field) {
    fields.names(spec, 'paths', field, { min: 1 });
    readMultipathTuning(spec, field);
  },
  children(spec) {
    return spec.paths as string[];
  },
  async create(spec, context, field) {
    const names = fields.names(spec, 'paths', field, { min: 1 });
    const paths = await Promise.all(names.map((n, i) => context.use(n, `${field}.paths[${i}]`)));
    return new MultipathDevice({ name: spec.name, paths, ...readMultipathTuning(spec, field) });
  },
});
