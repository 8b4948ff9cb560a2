import type * as MorphDom from 'morphdom';
import type { FailoverSetState, PathMember, ReplicaMember, SetMember } from '../../../failover/set.js';
import type { ActionInfo } from '../../../failover/action.js';
import type { FrontEndSession } from '../../sessions.js';
import type { ImageJobView } from '../../image/job.js';
import type { ExportView } from '../exports.js';
import type { MemberStatus } from '../status.js';
import { deviceStateOf, memberHealth, type StateOf } from '../present/health.js';
import { badge, h, table, type Child } from './dom.js';
import { formatBytes, formatCount, formatDuration, formatRate, formatSince } from '../present/format.js';

/** morphdom, loaded by a classic <script> like uPlot. */
declare const morphdom: typeof MorphDom.default.default;

/** What the live stream's `state` event carries (gateway/api/server.ts liveState). */
export interface LiveState {
  readonly status: MemberStatus;
  readonly exports: readonly ExportView[];
  readonly sessions: readonly FrontEndSession[];
  readonly jobs: readonly ImageJobView[];
}

/**
 * The dashboard's tables, drawn from one snapshot of the member's state. A device's state
 * is read in one place (`stateOf`): from its failover set when it has one, else from the
 * device — so a mirror shows the same state in the summary, the exports, the devices and
 * its set. Sections are rebuilt as detached trees and morphed into the page (morphdom), so
 * a button under the pointer or an input being typed in survives the update.
 */
export class View {
  private state: LiveState | undefined;

  constructor(private readonly admin: () => boolean) {}

  render(state: LiveState): void {
    this.state = state;
    const sets = state.status.failoverSets;
    const stateOf = deviceStateOf(state.status);
    morph('summary', summary(state, stateOf));
    morph('sets', h('div', {}, sets.length === 0 ? h('p', { class: 'empty' }, 'no failover sets') : sets.map((s) => setCard(s, this.admin()))));
    morph('paths', pathTable(sets, state.status));
    morph('exports', exportTable(state.exports, stateOf));
    morph('devices', deviceTable(state.status, stateOf));
    morph('sessions', sessionTable(state.sessions));
    morph('jobs', jobTable(state.jobs));
    morph('frontends', frontEndTable(state.status.frontEnds));
  }

  current(): LiveState | undefined {
    return this.state;
  }
}

function morph(id: string, content: HTMLElement): void {
  const target = document.getElementById(id);
  if (!target) return;
  const next = h('div', { id }, content);
  morphdom(target, next, {
    getNodeKey: (node) => (node instanceof HTMLElement ? (node.dataset.key ?? node.id) || undefined : undefined),
    // What the operator is typing into stays as typed.
    onBeforeElUpdated: (from) => !(from instanceof HTMLInputElement && from.dataset.user !== undefined),
  });
}

/** Health as hosts get it (present/health.ts); every device's state counted below it. */
function summary(state: LiveState, stateOf: StateOf): HTMLElement {
  const devices = state.status.devices.map((d) => stateOf(d.name));
  const worst = memberHealth(state.status);
  const countOf = (s: string): number => devices.filter((d) => d === s).length;
  const resyncs = state.status.failoverSets.flatMap((s) => (s.kind === 'mirror' ? s.resync : []));
  const card = (label: string, value: Child, detail: Child, key: string): HTMLElement =>
    h('div', { class: 'card', 'data-key': key }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value), h('div', { class: 'detail' }, detail));
  return h(
    'div',
    { class: 'cards' },
    card('health', badge(worst), `${devices.length} devices: ${countOf('degraded')} degraded, ${countOf('rebuilding')} rebuilding, ${countOf('failed')} failed`, 'health'),
    card('exports', String(state.exports.length), state.exports.map((e) => e.name).join(', ') || 'none', 'exports'),
    card('sessions', String(state.sessions.filter((s) => s.kind === 'normal').length), `${state.sessions.filter((s) => s.protocol === 'nbd').length} NBD, ${state.sessions.filter((s) => s.protocol === 'iscsi').length} iSCSI`, 'sessions'),
    card('resyncs', String(resyncs.length), resyncs.map((r) => `${r.target} ${r.percent.toFixed(0)} %`).join(', ') || 'none running', 'resyncs'),
  );
}

function setCard(set: FailoverSetState, admin: boolean): HTMLElement {
  const policy =
    set.kind === 'mirror'
      ? `read ${set.policy.readPolicy}, resync ${set.policy.resyncRateMiBps ? `${set.policy.resyncRateMiBps} MiB/s` : 'unlimited'}, quarantine after ${set.policy.failureLimit.failures} failures in ${formatDuration(set.policy.failureLimit.windowMs / 1000)}`
      : `${set.policy.mode}, failback ${String(set.policy.failback)}${set.activePath ? `, active path ${set.activePath}` : ''}${set.waiting ? `, ${set.waiting} waiting` : ''}`;
  const memberBound = (a: ActionInfo): boolean => a.argument !== undefined && a.argument.type === 'string' && ['replica', 'path', 'spare'].includes(a.argument.field);
  const rows = set.members.map((m) => memberRow(set, m, admin ? set.actions.filter(memberBound) : []));
  return h(
    'div',
    { class: 'set', 'data-key': `set:${set.name}`, 'data-set': set.name, 'data-state': set.state },
    h('h3', {}, set.name, ' ', badge(set.state), h('span', { class: 'muted' }, ` ${set.kind} · ${set.composition} · serving ${set.serving}${set.parent ? ` · member ${set.parent.member} of ${set.parent.set}` : ''}`)),
    h('p', { class: 'muted' }, policy),
    table(['member', 'role', 'state', 'detail', 'failures', 'last error', admin ? 'actions' : ''], rows),
    set.kind === 'mirror' ? set.resync.map((r) => resyncBar(r)) : null,
    admin ? setActions(set, set.actions.filter((a) => !memberBound(a))) : null,
  );
}

function memberRow(set: FailoverSetState, m: SetMember, actions: ActionInfo[]): HTMLTableRowElement {
  const detail = m.kind === 'replica' ? replicaDetail(m) : pathDetail(m);
  const usable = actions.filter((a) => a.argument!.field !== 'spare' || (m.kind === 'replica' && m.slot === 'alternate'));
  return h(
    'tr',
    { 'data-key': `member:${set.name}:${m.name}`, 'data-member': m.name, 'data-state': m.state },
    h('td', {}, m.name, m.set ? h('span', { class: 'muted' }, ` (set ${m.set})`) : null),
    h('td', {}, h('span', { class: `role role-${m.role}` }, m.role)),
    h('td', {}, badge(m.state)),
    h('td', {}, detail),
    h('td', {}, `${m.health.recentFailures} in ${formatDuration(m.health.window.windowMs / 1000)}`),
    h('td', { class: 'error-text' }, m.health.lastError ?? ''),
    h(
      'td',
      {},
      usable.map((a) =>
        h('button', { type: 'button', class: 'action', 'data-device': set.device, 'data-action': a.name, 'data-field': a.argument!.field, 'data-value': m.name, title: a.description }, a.name),
      ),
    ),
  );
}

function replicaDetail(m: ReplicaMember): string {
  const parts: string[] = [m.slot === 'alternate' ? 'spare' : 'replica'];
  if (m.dirtyBytes > 0) parts.push(`${formatBytes(m.dirtyBytes)} to resync`);
  if (m.readErrors || m.writeErrors) parts.push(`${m.readErrors} read / ${m.writeErrors} write errors`);
  if (m.readRepairs) parts.push(`${m.readRepairs} repaired reads`);
  return parts.join(', ');
}

function pathDetail(m: PathMember): string {
  return `${m.outstanding} outstanding, ${formatCount(m.ios)} I/Os, ${m.errors} errors`;
}

function resyncBar(r: { target: string; percent: number; bytesCopied: number; bytesTotal: number; rateMiBps: number; etaSeconds: number | null }): HTMLElement {
  return progress(`resync ${r.target}`, { 'data-key': `resync:${r.target}`, 'data-resync': r.target }, r.bytesCopied, r.bytesTotal, r.rateMiBps * 1024 * 1024, r.etaSeconds);
}

/** A progress bar with percent, bytes, rate and ETA: resyncs and image jobs. */
function progress(label: string, attributes: Record<string, string>, done: number, total: number, bytesPerSecond: number, etaSeconds: number | null): HTMLElement {
  const percent = total > 0 ? (done / total) * 100 : 100;
  return h(
    'div',
    { class: 'progress', ...attributes, 'data-percent': percent.toFixed(1) },
    h('span', { class: 'progress-label' }, label),
    h('progress', { max: 100, value: percent.toFixed(1) }),
    h('span', {}, `${percent.toFixed(1)} % · ${formatBytes(done)} of ${formatBytes(total)} · ${formatRate(bytesPerSecond)} · ETA ${formatDuration(etaSeconds)}`),
  );
}

function jobTable(jobs: readonly ImageJobView[]): HTMLElement {
  return table(
    ['job', 'kind', 'export', 'file', 'state', 'progress'],
    jobs.map((j) =>
      h(
        'tr',
        { 'data-key': `job:${j.id}`, 'data-job': j.id, 'data-state': j.state },
        h('td', {}, j.id),
        h('td', {}, j.kind === 'image-import' ? 'import' : 'export'),
        h('td', {}, j.export),
        h('td', {}, `${j.file} (${j.format})`),
        h('td', {}, badge(j.state), j.error ? h('div', { class: 'error-text' }, j.error) : null),
        h('td', {}, j.state === 'running' ? progress('', {}, j.bytesDone, j.bytesTotal, j.bytesPerSecond, j.etaSeconds) : formatBytes(j.bytesTotal)),
      ),
    ),
    'no image import or export jobs',
  );
}

/** Set-level actions: a button each, with an input for its argument if it takes one. */
function setActions(set: FailoverSetState, actions: ActionInfo[]): HTMLElement | null {
  if (actions.length === 0) return null;
  return h(
    'div',
    { class: 'set-actions' },
    actions.map((a) =>
      h(
        'form',
        { class: 'action-form', 'data-key': `form:${set.name}:${a.name}`, 'data-device': set.device, 'data-action': a.name, ...(a.argument && { 'data-field': a.argument.field, 'data-type': a.argument.type }), title: a.description },
        a.argument ? h('input', { name: 'value', 'data-user': '', placeholder: a.argument.field, type: a.argument.type === 'number' ? 'number' : 'text', step: 'any', 'aria-label': `${a.name} ${a.argument.field}` }) : null,
        h('button', { type: 'submit', class: 'action' }, a.name),
      ),
    ),
  );
}

function pathTable(sets: readonly FailoverSetState[], status: MemberStatus): HTMLElement {
  const addressOf = (device: string): string => {
    const detail = status.devices.find((d) => d.name === device)?.detail;
    return typeof detail?.address === 'string' ? detail.address : '';
  };
  const rows = sets.flatMap((s) =>
    s.kind === 'multipath'
      ? s.members.map((m) =>
          h(
            'tr',
            { 'data-key': `path:${s.name}:${m.name}`, 'data-path': m.name, 'data-state': m.state },
            h('td', {}, s.name),
            h('td', {}, m.name),
            h('td', {}, addressOf(m.name)),
            h('td', {}, m.role),
            h('td', {}, badge(m.state)),
            h('td', { class: 'error-text' }, m.health.lastError ?? ''),
          ),
        )
      : [],
  );
  return table(['set', 'path', 'address', 'role', 'state', 'last error'], rows, 'no multipath devices');
}

function exportTable(exports: readonly ExportView[], stateOf: StateOf): HTMLElement {
  return table(
    ['export', 'device', 'size', 'state', 'mode', 'NBD', 'iSCSI target / LUN'],
    exports.map((e) =>
      h(
        'tr',
        { 'data-key': `export:${e.name}`, 'data-export': e.name, 'data-state': stateOf(e.device) },
        h('td', {}, e.name, e.description ? h('div', { class: 'muted' }, e.description) : null),
        h('td', {}, e.device),
        h('td', { title: `${e.size} bytes` }, formatBytes(e.size)),
        h('td', {}, badge(stateOf(e.device))),
        h('td', {}, e.readOnly ? 'read-only' : 'read-write'),
        h('td', {}, e.nbd.join(', ')),
        h('td', {}, e.iscsi.map((l) => h('div', {}, `${l.target} LUN ${l.lun}`, h('span', { class: 'muted' }, ` via ${l.portals.join(', ')}`)))),
      ),
    ),
    'no exports',
  );
}

function deviceTable(status: MemberStatus, stateOf: StateOf): HTMLElement {
  return table(
    ['device', 'size', 'state', 'in flight'],
    status.devices.map((d) =>
      h(
        'tr',
        { 'data-key': `device:${d.name}`, 'data-device': d.name, 'data-state': stateOf(d.name) },
        h('td', {}, d.name),
        h('td', { title: `${d.size} bytes` }, formatBytes(d.size)),
        h('td', {}, badge(stateOf(d.name))),
        h('td', {}, String((d.io as { inFlight?: number }).inFlight ?? 0)),
      ),
    ),
  );
}

function sessionTable(sessions: readonly FrontEndSession[]): HTMLElement {
  const now = Date.now();
  return table(
    ['protocol', 'initiator / client', 'portal', 'target', 'exports (LUNs)', 'state', 'connected for'],
    sessions.map((s) =>
      h(
        'tr',
        { 'data-key': `session:${s.id}`, 'data-session': s.id },
        h('td', {}, s.protocol, s.kind === 'discovery' ? ' (discovery)' : ''),
        h('td', {}, s.initiator ?? s.connections.map((c) => c.client).join(', '), s.initiator ? h('div', { class: 'muted' }, s.connections.map((c) => c.client).join(', ')) : null),
        h('td', {}, s.connections.map((c) => c.portal).join(', ')),
        h('td', {}, s.target ?? ''),
        h('td', {}, s.luns ? s.luns.map((l) => `${l.export} (LUN ${l.lun})`).join(', ') : s.exports.join(', ')),
        h('td', {}, s.state),
        h('td', { title: s.since }, formatSince(s.since, now)),
      ),
    ),
    'no clients connected',
  );
}

function frontEndTable(frontEnds: Record<string, string[]>): HTMLElement {
  return table(
    ['protocol', 'listening on'],
    Object.entries(frontEnds).flatMap(([protocol, addresses]) => addresses.map((a) => [protocol, a])),
  );
}
