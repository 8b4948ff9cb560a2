import { ReplicatedVolume } from '../../fabric/layers/replicated-volume.js';
import { ConfigError } from '../../failover/config/errors.js';
import type { DeviceFactory } from './context.js';
import { createFile } from './leaves.js';

/**
 * A shared-nothing replicated disk on this member: its own replica, a local file opened as
 * a `file` backend would be (same checks, same errors), held by a volume that the set's
 * Primary attaches its mirror to (failover/cluster/shared-nothing.ts). The replica is
 * exported to the peers by the member's replication port.
 */
export const createReplicated: DeviceFactory<'replicated'> = async (spec, context, field) => {
  const member = context.memberId;
  if (member === undefined) throw new ConfigError(field, 'a replicated device is built only by a cluster member (serve --member ID)');
  const perMember = spec.paths?.[member];
  const local = await createFile(
    { name: `${spec.name}@${member}`, type: 'file', path: perMember ?? spec.path, size: spec.size, create: spec.create ?? false },
    context,
    perMember === undefined ? field : `${field}.paths.${member}`,
  );
  return new ReplicatedVolume(spec.name, local);
};
