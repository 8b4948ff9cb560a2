import { ReplicatedVolume } from '../fabric/layers/replicated-volume.js';
import { logger } from '../fabric/log.js';
import { FabricSwitch } from '../fabric/switch.js';
import { toListenAddress } from '../failover/config/schema/listen.js';
import type { Port, PortContext } from '../member/ports.js';
import { lmdbFenceMemory } from './nbd/fence-memory.js';
import { FenceRegistry } from './nbd/fencing.js';
import { NbdServer } from './nbd/server.js';

const log = logger('replication-port');

/**
 * The member's replication port: an NBD server on `cluster.members[].replication` that
 * exports this member's replica of every shared-nothing (`replicated`) device, under the
 * device's name, to the Primary of its failover set. It has its own switch (the replicas
 * are not the volumes the front ends serve) and its own fencing registry, which requires a
 * token: a client that presents none is refused, and one whose token is older than the
 * newest seen for the replica — a deposed Primary — is refused every request. The newest
 * tokens are kept in the member store, so a restarted member still refuses a deposed Primary.
 *
 * The replication network is the members' own (like DRBD's): no TLS or access lists here.
 */
export function replicationPort({ config, fabric, memberId, store }: PortContext): Port {
  const address = config.cluster?.members.find((m) => m.id === memberId)?.replication;
  const volumes = fabric.listDevices().filter((d): d is ReplicatedVolume => d instanceof ReplicatedVolume);
  const replicas = new FabricSwitch();
  for (const v of volumes) {
    replicas.addDevice(v.local);
    replicas.addExport({ name: v.name, device: v.local.name, description: `replica of ${v.name} on ${memberId}` });
  }
  const server =
    address === undefined || volumes.length === 0
      ? undefined
      : new NbdServer({ fabric: replicas, id: `${memberId}/replication`, listen: [toListenAddress(address) as { host: string; port: number }], fences: new FenceRegistry(true, store ? lmdbFenceMemory(store.root, 'replication') : undefined) });
  return {
    protocol: 'replication',
    async start() {
      await server?.start();
      if (server) log.info({ member: memberId, listen: address, replicas: volumes.map((v) => v.name) }, 'replication port open: replicas exported to the Primary');
    },
    stop: async (options) => {
      await server?.stop(options);
    },
    addresses: () => (server ? [address!] : []),
  };
}
