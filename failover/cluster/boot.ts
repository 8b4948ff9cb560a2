import { ConfigError } from '../config/errors.js';
import type { BootContext, BootOutcome, BootPhase } from '../boot/phase.js';
import { arbiterOf } from './arbiter-of.js';
import { SetRunner } from './set-runner.js';

/**
 * A cluster member's boot phase: one arbiter, and a runner for each failover set this member
 * belongs to. The runners campaign once the member's ports are up (a member campaigns only
 * when it could serve); each export is gated by its set's leadership, per request.
 */
export const clusterBoot: BootPhase = {
  name: 'cluster',
  async boot({ config, memberId, setPorts }: BootContext): Promise<BootOutcome> {
    const cluster = config.cluster;
    if (!cluster) throw new Error('the cluster boot phase needs a cluster section');
    if (!cluster.members.some((m) => m.id === memberId)) {
      throw new ConfigError('cluster.members', `this member (${memberId}) is not listed (members: ${cluster.members.map((m) => m.id).join(', ')}); give --member`);
    }
    const arbiter = arbiterOf(cluster);
    const gates = new Map<string, () => boolean>();
    const runners: SetRunner[] = [];
    for (const set of cluster.sets) {
      if (!set.members.includes(memberId)) continue;
      const runner = new SetRunner(set, memberId, arbiter, setPorts(set), { pid: process.pid });
      runners.push(runner);
      for (const e of set.exports) gates.set(e, runner.mayServe);
    }
    let stopping: Promise<void> | undefined;
    return {
      mode: 'cluster',
      // An export of no set of this member is never served here.
      gate: (exportName) => gates.get(exportName) ?? (() => false),
      start: () => runners.forEach((r) => r.start()),
      stop: () =>
        (stopping ??= (async () => {
          // Hand every role over first (resign): the next Primary starts without a lease wait.
          await Promise.allSettled(runners.map((r) => r.stop()));
          await arbiter.close();
        })()),
      roles: () => runners.map((r) => ({ set: r.set.name, role: r.role, ...(r.token !== undefined && { token: r.token }) })),
      primaryOf: (set) => runners.find((r) => r.set.name === set)?.view,
    };
  },
};
