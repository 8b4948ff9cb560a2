import type { BootOutcome, ClusterServices } from '../../failover/boot/phase.js';
import { childrenOf, type DeviceSpec } from '../../failover/config/schema/devices.js';
import type { MemberConfig } from '../../failover/config/schema/member-config.js';
import type { PrimaryDirectory } from './forward.js';

/**
 * Who is the Primary of each failover set, for forwarding changes (forward.ts): the set's
 * Primary as this member's view of the arbiter says, reached at the management API it
 * announces to its peers. Configuration changes belong to the cluster set (its Primary
 * writes the generations); an action on a device belongs to the set that serves an export
 * whose device tree holds it.
 */
export function primaryDirectory(config: MemberConfig, boot: BootOutcome, services: ClusterServices, generation: () => number | undefined): PrimaryDirectory {
  const cluster = config.cluster!;
  const specs = new Map<string, DeviceSpec>([...config.backends, ...config.devices].map((d) => [d.name, d]));
  const setOfDevice = new Map<string, string>();
  for (const set of cluster.sets) {
    for (const name of set.exports) {
      const top = config.exports.find((e) => e.name === name)?.device;
      const tree = top === undefined ? [] : [top];
      for (let i = 0; i < tree.length; i++) {
        const spec = specs.get(tree[i]!);
        if (spec) tree.push(...childrenOf(spec));
      }
      for (const device of tree) setOfDevice.set(device, set.name);
    }
  }
  return {
    member: services.memberId,
    configSet: cluster.name,
    setOfDevice: (name) => setOfDevice.get(name),
    primaryOf(set) {
      const primary = boot.primaryOf(set)?.current();
      if (!primary || primary.member === services.memberId) return primary && { member: primary.member, apis: [] };
      // A Primary not heard (yet) is as good as none: the change waits for one that answers.
      const apis = services.apiOf(primary.member);
      return apis && { member: primary.member, apis };
    },
    generation,
    seal: (text) => services.seal(text),
  };
}
