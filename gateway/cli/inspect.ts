import type { FailoverSetState } from '../../failover/set.js';
import type { ExportView } from '../api/exports.js';
import type { MemberStatus } from '../api/status.js';
import type { FrontEndSession } from '../sessions.js';
import { formatBytes, formatDuration } from '../api/present/format.js';
import { deviceStateOf, memberHealth } from '../api/present/health.js';
import { renderTable } from './table.js';

/**
 * What `blockgate status|exports|devices|sessions|paths` print for people: tables drawn
 * from the API's typed answers (the same ones the dashboard draws). A device's state is
 * its failover set's when it has one, so every table agrees.
 */

export function statusText(member: string, status: MemberStatus, sessions: readonly FrontEndSession[]): string {
  const stateOf = deviceStateOf(status);
  const bad = status.devices.filter((d) => stateOf(d.name) !== 'optimal').map((d) => `${d.name} ${stateOf(d.name)}`);
  const lines = [
    `member:    ${status.member} (answered by ${member})`,
    `health:    ${memberHealth(status)}${bad.length > 0 ? ` (${bad.join(', ')})` : ''}`,
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

/** With `byMember`, a first column says which member each client is connected to. */
export function sessionsText(sessions: ReadonlyArray<FrontEndSession & { member?: string }>, byMember = false, now = Date.now()): string {
  const head = ['PROTOCOL', 'INITIATOR/CLIENT', 'PORTAL', 'TARGET', 'EXPORTS', 'STATE', 'SINCE', 'FOR'];
  const rows = sessions.map((s) => [
    s.kind === 'discovery' ? `${s.protocol} (discovery)` : s.protocol,
    s.initiator ? `${s.initiator} [${s.connections.map((c) => c.client).join(', ')}]` : s.connections.map((c) => c.client).join(', '),
    s.connections.map((c) => c.portal).join(', '),
    s.target ?? '-',
    s.luns ? s.luns.map((l) => `${l.export}(LUN ${l.lun})`).join(', ') : s.exports.join(', ') || '-',
    s.state,
    s.since,
    formatDuration((now - Date.parse(s.since)) / 1000),
  ]);
  if (!byMember) return renderTable(head, rows, 'no clients connected');
  return renderTable(['MEMBER', ...head], rows.map((r, i) => [sessions[i]!.member, ...r]), 'no clients connected');
}

export interface PathRow {
  readonly set: string;
  readonly path: string;
  readonly address?: string;
  readonly role: string;
  readonly state: string;
  readonly recentFailures: number;
  readonly lastError?: string;
}

/** Every path of every multipath set, with the address of the device behind it when it has one. */
export function pathRows(status: MemberStatus): PathRow[] {
  const addressOf = (device: string): string | undefined => {
    const a = status.devices.find((d) => d.name === device)?.detail?.address;
    return typeof a === 'string' ? a : undefined;
  };
  return status.failoverSets.flatMap((s) =>
    s.kind === 'multipath'
      ? s.members.map((m) => {
          const address = addressOf(m.name);
          return {
            set: s.name,
            path: m.name,
            ...(address !== undefined && { address }),
            role: m.role,
            state: m.state,
            recentFailures: m.health.recentFailures,
            ...(m.health.lastError !== undefined && { lastError: m.health.lastError }),
          };
        })
      : [],
  );
}

export function pathsText(status: MemberStatus): string {
  return renderTable(
    ['SET', 'PATH', 'ADDRESS', 'ROLE', 'STATE', 'FAILURES', 'LAST ERROR'],
    pathRows(status).map((p) => [p.set, p.path, p.address, p.role, p.state, p.recentFailures, p.lastError]),
    'no multipath devices',
  );
}
