import type { BootContext, BootOutcome, BootPhase } from '../boot/phase.js';
import { ClusterRoles } from './roles.js';

/**
 * A cluster member's boot phase: one arbiter, and a runner for each failover set this member
 * belongs to (cluster/roles.ts). With management networks, the cluster services start here,
 * before the ports open (discovery, heartbeats, the answers to peers' requests); the
 * runners campaign once the ports are up (a member campaigns only when it could serve);
 * each export is gated by its set's leadership, per request.
 */
export const clusterBoot: BootPhase = {
  name: 'cluster',
  async boot(context: BootContext): Promise<BootOutcome> {
    const roles = new ClusterRoles(context);
    try {
      await roles.startServices();
    } catch (err) {
      await roles.stop();
      throw err;
    }
    return roles;
  },
};
