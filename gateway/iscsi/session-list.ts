import { socketEnd, type FrontEndSession } from '../sessions.js';
import type { Connection } from './connection.js';
import type { Session } from './session.js';

/**
 * The iSCSI sessions as the operator sees them: each logged-in session with its
 * initiator, target, LUNs and TCP connections, and each connection still logging in as a
 * `negotiating` entry of its own (it has no session yet).
 */
export function iscsiSessions(
  sessions: Iterable<Session>,
  connections: Iterable<Connection>,
  since: WeakMap<object, Date>,
): FrontEndSession[] {
  const bySession = new Map<Session, Connection[]>();
  const out: FrontEndSession[] = [];
  for (const c of connections) {
    if (c.closed) continue;
    if (c.session) (bySession.get(c.session) ?? bySession.set(c.session, []).get(c.session)!).push(c);
    else {
      out.push({
        protocol: 'iscsi',
        id: `iscsi/conn-${c.id}`,
        kind: 'normal',
        state: 'negotiating',
        exports: [],
        connections: [ends(c)],
        since: (since.get(c) ?? new Date()).toISOString(),
      });
    }
  }
  for (const s of sessions) {
    if (s.closed) continue;
    const luns = s.target?.config.luns.map((l) => ({ lun: l.lun, export: l.export })) ?? [];
    out.push({
      protocol: 'iscsi',
      id: `iscsi/tsih-${s.tsih}`,
      initiator: s.initiatorName,
      isid: s.isid,
      ...(s.target && { target: s.target.name }),
      kind: s.type === 'Discovery' ? 'discovery' : 'normal',
      state: 'serving',
      exports: [...new Set(luns.map((l) => l.export))],
      ...(s.target && { luns }),
      connections: (bySession.get(s) ?? []).map(ends),
      since: (since.get(s) ?? new Date()).toISOString(),
    });
  }
  return out;
}

function ends(c: Connection): { client: string; portal: string } {
  return { client: socketEnd(c.socket.remoteAddress, c.socket.remotePort), portal: socketEnd(c.socket.localAddress, c.socket.localPort) };
}
