import type { MembershipChange } from '../context.js';
import type { DeviceSpec } from './schema/devices.js';
import type { MemberConfig } from './schema/member-config.js';

/**
 * The configuration with a set's membership change in it (a spare added to or removed from
 * a mirror's `spares`), so that the next start builds the set as it runs now.
 */
export function withMembershipChange(config: MemberConfig, change: MembershipChange): MemberConfig {
  const edit = (spec: DeviceSpec): DeviceSpec => {
    if (spec.name !== change.set || spec.type !== 'mirror') return spec;
    const spares = (spec.spares ?? []).filter((n) => n !== change.device);
    if (change.change === 'spare-added') spares.push(change.device);
    const { spares: _dropped, ...rest } = spec;
    return spares.length > 0 ? { ...rest, spares } : rest;
  };
  return { ...config, backends: config.backends.map(edit), devices: config.devices.map(edit) };
}
