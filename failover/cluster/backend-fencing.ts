import { isFenceable } from '../../fabric/fencing.js';
import { logger } from '../../fabric/log.js';
import type { FabricSwitch } from '../../fabric/switch.js';
import { subtree, type ValidatedSpec } from '../config/device-graph.js';
import type { FailoverSetConfig } from '../config/schema/cluster.js';
import type { MemberConfig } from '../config/schema/member-config.js';
import type { SetActions } from './set-runner.js';

const log = logger('failover-set');

/**
 * A new Primary presents its arbitration fencing token to the backends of its set that can
 * fence (blockgate NBD servers reached by `nbd` backends with `fencing: true`), before its
 * ports open: from then on those servers refuse what an earlier Primary still delivers — writes
 * it had sent before it was paused, killed or cut off. The token is presented synchronously as
 * activation starts, in the same turn as the runner opens the set's gate.
 */
export function fencingBackends(
  actions: SetActions,
  set: FailoverSetConfig,
  config: MemberConfig,
  graph: ReadonlyMap<string, ValidatedSpec>,
  fabric: FabricSwitch,
): SetActions {
  const devices = [...new Set(set.exports.flatMap((name) => {
    const device = config.exports.find((e) => e.name === name)?.device;
    return device === undefined || !graph.has(device) ? [] : subtree(graph, device);
  }))];
  return {
    activate: (leadership) => {
      const fenced: string[] = [];
      for (const name of devices) {
        const device = fabric.device(name);
        if (device && isFenceable(device)) {
          device.fenceTerm(leadership.token);
          fenced.push(name);
        }
      }
      if (fenced.length > 0) log.info({ set: set.name, term: leadership.token, devices: fenced }, 'backends fenced with this term');
      return actions.activate(leadership);
    },
    deactivate: (why) => actions.deactivate(why),
  };
}
