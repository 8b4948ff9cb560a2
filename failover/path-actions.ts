/**
 * What an operator may do to a path set; each action refuses (409) with the reason when the
 * set's current state forbids it.
 */
import { InvalidArgument, Refused, type ActionTable } from './action.js';
import type { PathSet } from './path-set.js';

export function pathActions(set: PathSet): ActionTable {
  const { multipath } = set;
  const path = (name: string | number | undefined) => {
    const p = set.pathInfo(String(name));
    if (!p) throw new InvalidArgument(`multipath ${set.name} has no path ${JSON.stringify(name)} (it has ${multipath.info().paths.map((x) => x.name).join(', ')})`);
    return p;
  };
  const stateOf = (name: string) => {
    const p = set.pathInfo(name);
    return p && set.memberState(p);
  };

  return {
    failback: {
      description: 'active-passive: move I/O back to the preferred (first) usable path',
      async run() {
        const info = multipath.info();
        if (info.policy !== 'active-passive') throw new Refused(`multipath ${set.name} is active-active: every usable path carries I/O`);
        const preferred = info.paths.find((p) => p.state !== 'failed');
        if (!preferred) throw new Refused(`multipath ${set.name} has no usable path`);
        if (preferred.name === info.activePath) throw new Refused(`I/O is already on the preferred usable path ${preferred.name}`);
        multipath.makeActive(preferred.name, 'operator failback');
        return { activePath: preferred.name };
      },
    },
    clearMarginal: {
      description: 'return a marginal path to service now instead of after a healthy window',
      argument: { field: 'path', type: 'string' },
      async run(arg) {
        const p = path(arg);
        const record = set.record(p.name);
        if (record.hold !== 'marginal') throw new Refused(`path ${p.name} of ${set.name} is not marginal (it is ${set.memberState(p)})`);
        record.window.clear();
        record.hold = undefined;
        set.bringIntoService(p.name, 'marginal state cleared by operator');
        return { path: p.name, state: stateOf(p.name) };
      },
    },
    offline: {
      description: 'take a path out of service until brought online (not counted as a failure)',
      argument: { field: 'path', type: 'string' },
      async run(arg) {
        const p = path(arg);
        const record = set.record(p.name);
        if (record.hold === 'offline') throw new Refused(`path ${p.name} is already offline`);
        const others = multipath.info().paths.filter((x) => x.name !== p.name && x.state !== 'failed');
        if (p.state !== 'failed' && others.length === 0) throw new Refused(`path ${p.name} is the only usable path of ${set.name}: taking it offline would stop I/O`);
        record.hold = 'offline';
        if (p.state !== 'failed') set.takeOut(p.name, 'taken offline by operator');
        return { path: p.name, state: stateOf(p.name) };
      },
    },
    online: {
      description: 'return an offline path: in service at once if it answers a probe, else when it does',
      argument: { field: 'path', type: 'string' },
      async run(arg) {
        const p = path(arg);
        const record = set.record(p.name);
        if (record.hold !== 'offline') throw new Refused(`path ${p.name} is not offline (it is ${set.memberState(p)})`);
        record.hold = undefined;
        const answered = await set.probeNow(p.name);
        if (answered && set.pathInfo(p.name)?.state === 'failed') set.bringIntoService(p.name, 'brought online by operator');
        return { path: p.name, state: stateOf(p.name), answered };
      },
    },
  };
}
