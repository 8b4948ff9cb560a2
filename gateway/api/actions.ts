import type { BlockDevice } from '../../fabric/device.js';
import { BlockError } from '../../fabric/errors.js';
import { MirrorDevice } from '../../fabric/layers/mirror/mirror.js';
import { MultipathDevice } from '../../fabric/layers/multipath/multipath.js';

/**
 * Operator actions on failover devices, as POST /api/v1/devices/NAME/actions/ACTION takes
 * them. Each names the body field it needs; the handler returns what to answer.
 */
interface Action<D> {
  /** Body field naming the replica or path acted on, if the action takes one. */
  readonly argument?: 'replica' | 'path';
  run(device: D, argument: string): Promise<Record<string, unknown>>;
}

const MIRROR_ACTIONS: Readonly<Record<string, Action<MirrorDevice>>> = {
  reintegrate: {
    argument: 'replica',
    async run(mirror, replica) {
      await mirror.reintegrate(replica);
      return {};
    },
  },
  clearQuarantine: {
    argument: 'replica',
    async run(mirror, replica) {
      await mirror.clearQuarantine(replica);
      return {};
    },
  },
};

const MULTIPATH_ACTIONS: Readonly<Record<string, Action<MultipathDevice>>> = {
  failback: {
    async run(multipath) {
      multipath.failback();
      return {};
    },
  },
  clearMarginal: {
    argument: 'path',
    async run(multipath, path) {
      if (!multipath.clearMarginal(path)) throw new BlockError('EINVAL', `path ${path} of ${multipath.name} is not marginal (or does not exist)`);
      return {};
    },
  },
};

/** A request the client got wrong: answered 400 with the message. */
export class BadRequest extends Error {}

/** The actions a device offers: none for devices without failover. */
export function actionsOf(device: BlockDevice): string[] {
  if (device instanceof MirrorDevice) return Object.keys(MIRROR_ACTIONS);
  if (device instanceof MultipathDevice) return Object.keys(MULTIPATH_ACTIONS);
  return [];
}

/** Run `action` on `device` with the parsed JSON body. Throws BadRequest for a wrong action or body. */
export async function runAction(device: BlockDevice, action: string, body: unknown): Promise<Record<string, unknown>> {
  if (device instanceof MirrorDevice) return dispatch(device, MIRROR_ACTIONS, action, body);
  if (device instanceof MultipathDevice) return dispatch(device, MULTIPATH_ACTIONS, action, body);
  throw new BadRequest(`device ${device.name} has no operator actions`);
}

async function dispatch<D extends BlockDevice>(device: D, table: Readonly<Record<string, Action<D>>>, action: string, body: unknown): Promise<Record<string, unknown>> {
  const entry = Object.hasOwn(table, action) ? table[action] : undefined;
  if (!entry) throw new BadRequest(`unknown action ${JSON.stringify(action)} for device ${device.name} (available: ${Object.keys(table).join(', ')})`);
  let argument = '';
  if (entry.argument) {
    const v = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[entry.argument] : undefined;
    if (typeof v !== 'string' || v === '') throw new BadRequest(`${action} needs a JSON body with a "${entry.argument}" name, e.g. {"${entry.argument}": "NAME"}`);
    argument = v;
  }
  return entry.run(device, argument);
}
