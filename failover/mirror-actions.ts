/**
 * What an operator may do to a mirror set. Each action checks the set's state first and
 * refuses (409) with the reason when the state forbids it, rather than doing nothing and
 * answering as if it had.
 */
import { BlockError, isBlockError } from '../fabric/errors.js';
import { InvalidArgument, Refused, type ActionTable } from './action.js';
import type { MirrorSet } from './mirror-set.js';

export function mirrorActions(set: MirrorSet): ActionTable {
  const { mirror } = set;
  const replica = (name: string | number | undefined) => {
    const r = set.replicaInfo(String(name));
    if (!r) throw new InvalidArgument(`mirror ${set.name} has no replica ${JSON.stringify(name)} (it has ${mirror.info().replicas.map((x) => x.name).join(', ')})`);
    return r;
  };
  const now = (name: string) => set.replicaInfo(name)?.state;

  return {
    reintegrate: {
      description: 'bring a failed or offline replica back now (probe, then resync), or restart the paused resync of a stale one',
      argument: { field: 'replica', type: 'string' },
      async run(arg) {
        const r = replica(arg);
        switch (r.state) {
          case 'quarantined':
            throw new Refused(`replica ${r.name} is quarantined: clear the quarantine first`);
          case 'in-sync':
            throw new Refused(`replica ${r.name} is already in sync`);
          case 'resyncing':
            throw new Refused(`replica ${r.name} is already resyncing`);
          case 'standby':
            throw new Refused(`${r.name} is a standby spare: it joins the replica set when a replica fails`);
          case 'stale':
            if (!mirror.startResync(r.name)) throw new Refused(`replica ${r.name} cannot resync now: no in-sync replica to copy from`);
            return { replica: r.name, state: now(r.name) };
          case 'offline':
            await mirror.release(r.name, 'brought back online by operator');
            break;
          case 'failed':
            break;
        }
        if (!(await set.probeAndReadmit(r.name, 'reintegrated by operator'))) {
          throw new BlockError('EIO', `replica ${r.name} does not answer yet`);
        }
        return { replica: r.name, state: now(r.name) };
      },
    },
    clearQuarantine: {
      description: 'lift the quarantine of a replica that exceeded its failure limit; it returns once it answers',
      argument: { field: 'replica', type: 'string' },
      async run(arg) {
        const r = replica(arg);
        if (r.state !== 'quarantined') throw new Refused(`replica ${r.name} is not quarantined (it is ${r.state})`);
        set.window(r.name).clear();
        await mirror.release(r.name, 'quarantine cleared by operator');
        const back = await set.probeAndReadmit(r.name, 'quarantine cleared by operator');
        return { replica: r.name, state: now(r.name), answered: back };
      },
    },
    offline: {
      description: 'take a replica or spare out of service until reintegrated (a spare replaces a replica)',
      argument: { field: 'replica', type: 'string' },
      async run(arg) {
        const r = replica(arg);
        if (r.state === 'offline') throw new Refused(`replica ${r.name} is already offline`);
        await refusing(() => mirror.fail(r.name, 'taken offline by operator', 'offline'));
        await set.settled();
        return { replica: r.name, state: now(r.name) };
      },
    },
    addSpare: {
      description: 'add an unused device of the configuration as a hot spare (stored in the configuration)',
      argument: { field: 'device', type: 'string' },
      async run(arg) {
        const name = String(arg);
        const device = set.context.claimDevice(name, set.name);
        try {
          await refusing(() => mirror.addSpare(device));
        } catch (err) {
          set.context.releaseDevice(name);
          throw err;
        }
        await set.context.membershipChanged({ set: set.name, change: 'spare-added', device: name });
        set.reconcile();
        await set.settled();
        return { spare: name, state: now(name) };
      },
    },
    removeSpare: {
      description: 'remove a spare (an Alternate, not a replica in the set); the device is free again',
      argument: { field: 'spare', type: 'string' },
      async run(arg) {
        const r = replica(arg);
        if (r.slot !== 'alternate') throw new Refused(`${r.name} is a replica of ${set.name} (${r.state}), not a spare`);
        await mirror.removeSpare(r.name);
        set.context.releaseDevice(r.name);
        await set.context.membershipChanged({ set: set.name, change: 'spare-removed', device: r.name });
        return { removed: r.name };
      },
    },
    setResyncRate: {
      description: 'change the resync rate limit in MiB/s (0: unlimited), applied to running resyncs at once',
      argument: { field: 'rateMiBps', type: 'number' },
      async run(arg) {
        const rate = Number(arg);
        if (!(rate >= 0)) throw new InvalidArgument(`rateMiBps must be at least 0 (got ${rate})`);
        mirror.setResyncRate(rate);
        return { resyncRateMiBps: rate };
      },
    },
    forceStart: {
      description: 'serve a mirror that has no in-sync replica from the named one, accepting that its data is now the truth',
      argument: { field: 'replica', type: 'string' },
      async run(arg) {
        const r = replica(arg);
        const inSync = mirror.info().replicas.find((x) => x.slot === 'member' && x.state === 'in-sync');
        if (inSync) throw new Refused(`mirror ${set.name} is serving from in-sync replica ${inSync.name}: nothing to force`);
        if (r.slot !== 'member') throw new Refused(`${r.name} is a spare, not a replica of ${set.name}`);
        if (r.state === 'quarantined' || r.state === 'offline') throw new Refused(`replica ${r.name} is ${r.state}: release it first`);
        try {
          await mirror.probe(r.name);
        } catch (err) {
          throw new BlockError('EIO', `replica ${r.name} does not answer: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        }
        await mirror.forceInSync(r.name, 'forced in sync by operator');
        set.reconcile();
        return { replica: r.name, state: now(r.name), device: mirror.info().state };
      },
    },
  };
}

/** The mirror's EPERM is a refusal in the set's current state. */
async function refusing<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (isBlockError(err) && err.code === 'EPERM') throw new Refused(err.message.replace(/^EPERM: /, ''));
    throw err;
  }
}
