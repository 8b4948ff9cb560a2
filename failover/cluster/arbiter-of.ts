import type { Arbiter } from '../arbitration/arbiter.js';
import { EtcdArbiter } from '../arbitration/etcd-arbiter.js';
import { FileArbiter } from '../arbitration/file-arbiter.js';
import type { ClusterConfig } from '../config/schema/cluster.js';

/** The arbitration back end a cluster section names. */
export function arbiterOf(cluster: ClusterConfig): Arbiter {
  const a = cluster.arbitration;
  if (a.type === 'file') return new FileArbiter({ dir: a.dir });
  return new EtcdArbiter({ endpoints: a.endpoints, cluster: cluster.name, ttlSeconds: a.ttlSeconds, fenceMarginMs: a.fenceMarginMs });
}
