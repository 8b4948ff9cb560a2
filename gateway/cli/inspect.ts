import type { FailoverSetState } from '../../failover/set.js';
import type { ExportView } from '../api/exports.js';
import type { MemberStatus } from '../api/status.js';
import type { FrontEndSession } from '../sessions.js';
import { formatBytes, formatDuration } from '../api/present/format.js';
import { deviceStateOf } from '../api/present/health.js';
import { renderTable } from './table.js';

/**
 * What `blockgate status|exports|devices|sessions|paths` print for people: tables drawn
 * from the API's typed answers (the same ones the dashboard draws). A device's state is
 * its failover set's when it has one, so every table agrees.
 */

/** Devices not optimal, worst first: what `status --check` fails on. */
export function unhealthy(status: MemberStatus): Array<{ device: string; state: string }> {
  const stateOf = deviceStateOf(status);
  const rank = ['failed', 'degraded', 'rebuilding'];
  return status.devices
    .map((d) => ({ device: d.name, state: stateOf(d.name) }))
    .filter((d) => d.state !== 'optimal')
    .sort((a, b) => rank.indexOf(a.state) - rank.indexOf(b.state));
}

export function statusText(member: string, status: MemberStatus, sessions: readonly FrontEndSession[]): string {
  const bad = unhealthy(status);
  const lines = [
    `member:    ${status.member} (answered by ${member})`,
    `health:    ${bad.length === 0 ? 'optimal' : bad.map((d) => `${d.device} ${d.state}`).join(', ')}`,
    `devices:   ${status.devices.length}, exports: ${status.exports.length}, failover sets: ${status.failoverSets.length}`,
    `sessions:  ${sessions.filter((s) => s.protocol === 'nbd').length} NBD, ${sessions.filter((s) => s.protocol === 'iscsi' && s.kind === 'normal').length} iSCSI`,
  ];
  for (const [protocol, addresses] of Object.entries(status.frontEnds)) lines.push(`${`${protocol}:`.padEnd(10)} ${addresses.join(', ') || '-'}`);
  const resyncs = status.failoverSets.flatMap((s) => (s.kind === 'mirror' ? s.resync.map((r) => ({ set: s.name, ...r })) : []));
  for (const r of resyncs) lines.push(`resync:    ${r.set} -> ${r.target} ${r.percent.toFixed(1)}% at ${r.rateMiBps.toFixed(1)} MiB/s, ETA ${formatDuration(r.etaSeconds)}`);
  return `${lines.join('\n')}\n`;
}

export function exportsText(exports: readonly ExportView[], status: MemberStatus): string {
  const stateOf = deviceStateOf(status);
  return renderTable(
    ['EXPORT', 'DEVICE', 'SIZE', 'STATE', 'MODE', 'ISCSI'],
    exports.map((e) => [e.name, e.device, formatBytes(e.size), stateOf(e.device), e.readOnly ? 'ro' : 'rw', e.iscsi.map((l) => `${l.target} LUN ${l.lun}`).join(', ') || '-']),
    'no exports',
  );
}

export function devicesText(status: MemberStatus): string {
  const stateOf = deviceStateOf(status);
  const setOf = new Map(status.failoverSets.map((s) => [s.device, s]));
  return renderTable(
    ['DEVICE', 'SIZE', 'STATE', 'SET', 'IN FLIGHT'],
    status.devices.map((d) => {
      const set = setOf.get(d.name);
      return [d.name, formatBytes(d.size), stateOf(d.name), set ? `${set.kind} (${set.members.length} members)` : '-', (d.io as { inFlight?: number }).inFlight ?? 0];
    }),
    'no devices',
  );
}

export function setsText(sets: readonly FailoverSetState[]): string {
  return renderTable(
    ['SET', 'KIND', 'STATE', 'MEMBER', 'ROLE', 'MEMBER STATE', 'LAST ERROR'],
    sets.flatMap((s) => s.members.map((m) => [s.name, s.kind, s.state, m.name, m.role, m.state, m.health.lastError ?? '-'])),
    'no failover sets',
  );
}

export function sessionsText(sessions: readonly FrontEndSession[], now = Date.now()): string {
  return renderTable(
    ['PROTOCOL', 'INITIATOR/CLIENT', 'PORTAL', 'TARGET', 'EXPORTS', 'STATE', 'SINCE', 'FOR'],
    sessions.map((s) => [
      s.kind === 'discovery' ? `${s.protocol} (discovery)` : s.protocol,
      s.initiator ? `${s.initiator} [${s.connections.map((c) => c.client).join(', ')}]` : s.connections.map((c) => c.client).join(', '),
      s.connections.map((c) => c.portal).join(', '),
      s.target ?? '-',
      s.luns ? s.luns.map((l) => `${l.export}(LUN ${l.lun})`).join(', ') : s.exports.join(', ') || '-',
      s.state,
      s.since,
      formatDuration((now - Date.parse(s.since)) / 1000),
    ]),
    'no clients connected',
  );
}

export function pathsText(status: MemberStatus): string {
  const addressOf = (device: string): string | undefined => {
    const a = status.devices.find((d) => d.name === device)?.detail?.address;
    return typeof a === 'string' ? a : undefined;
  };
  return renderTable(
    ['SET', 'PATH', 'ADDRESS', 'ROLE', 'STATE', 'FAILURES', 'LAST ERROR'],
    status.failoverSets.flatMap((s) =>
      s.kind === 'multipath' ? s.members.map((m) => [s.name, m.name, addressOf(m.name), m.role, m.state, m.health.recentFailures, m.health.lastError]) : [],
    ),
    'no multipath devices',
  );
}
