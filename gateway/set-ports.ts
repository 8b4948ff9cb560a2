import { logger } from '../fabric/log.js';
import type { FabricSwitch } from '../fabric/switch.js';
import type { FailoverSetConfig } from '../failover/config/schema/cluster.js';
import { releaseAddress, takeAddress } from '../failover/cluster/service-address.js';
import type { SetActions } from '../failover/cluster/set-runner.js';
import { NbdServer, type NbdServerOptions } from './nbd/server.js';

/** What a set's NBD server takes from the member: TLS, access lists, client limits, where refusals are counted. */
export type SetNbdSecurity = Pick<NbdServerOptions, 'tls' | 'access' | 'refusals' | 'connectionLimits' | 'handshakeTimeoutMs'>;

const log = logger('set-ports');

/**
 * The front-end ports of one failover set on this member, opened while it is the set's
 * Primary: the service address first (so the listeners can bind it), then an NBD server
 * that offers only the set's exports. Closed in reverse, connections dropped at once: a
 * client re-issues what got no reply to the next Primary.
 */
export function setPorts(set: FailoverSetConfig, fabric: FabricSwitch, member: string, security: SetNbdSecurity = {}): SetActions & { addresses(): string[] } {
  let server: NbdServer | undefined;
  return {
    activate: async () => {
      if (set.serviceAddress) await takeAddress(set.serviceAddress);
      if (set.nbd.listen.length > 0) {
        server = new NbdServer({ ...security, fabric: fabric.view(set.exports), id: `${member}/${set.name}/nbd`, listen: set.nbd.listen, defaultExport: set.exports[0]! });
        await server.start();
      }
      log.info({ set: set.name, listen: server?.addresses() ?? [] }, 'set ports open');
    },
    deactivate: async () => {
      const s = server;
      server = undefined;
      await s?.stop({ drainMs: 0 });
      if (set.serviceAddress) await releaseAddress(set.serviceAddress);
    },
    addresses: () => (server?.addresses() ?? []).map((a) => ('socketPath' in a ? `unix:${a.socketPath}` : `${a.host}:${a.port}`)),
  };
}
