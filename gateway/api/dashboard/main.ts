import type { Sample } from '../sampler.js';
import { Charts, type ChartSubject } from './charts.js';
import { apiRequest, ApiFailure, followLive, forgetToken, storedToken, storeToken } from './connection.js';
import { byId, fill, h } from './dom.js';
import { View, type LiveState } from './view.js';

/**
 * The dashboard page's entry point: asks for the API token (read-only shows, admin also
 * acts), follows the live stream, and hands each event to the charts or the tables.
 */

let role: 'admin' | 'read' | undefined;
let live: { stop(): void } | undefined;
const view = new View(() => role === 'admin');
const charts = new Charts(byId('charts'));
let pendingHistory: Sample[] | undefined;

function setLink(text: string, kind: 'up' | 'down' | 'auth'): void {
  const link = byId('link');
  link.textContent = text;
  link.dataset.link = kind;
}

function toast(text: string, outcome: 'ok' | 'error'): void {
  const t = byId('toast');
  t.textContent = text;
  t.dataset.outcome = outcome;
  t.hidden = false;
}

/** Chart cards: one per export; one per device that several exports share. */
function subjectsOf(state: LiveState): ChartSubject[] {
  const subjects: ChartSubject[] = state.exports.map((e) => ({ key: `export:${e.name}`, title: `export ${e.name} → ${e.device}`, pick: (s: Sample) => s.exports[e.name] }));
  const byDevice = new Map<string, string[]>();
  for (const e of state.exports) byDevice.set(e.device, [...(byDevice.get(e.device) ?? []), e.name]);
  for (const [device, names] of byDevice) {
    if (names.length > 1) subjects.push({ key: `device:${device}`, title: `device ${device} (exports ${names.join(', ')})`, pick: (s: Sample) => s.devices[device] });
  }
  return subjects;
}

function onEvent(event: string, data: unknown): void {
  switch (event) {
    case 'history':
      pendingHistory = data as Sample[];
      return;
    case 'state': {
      const state = data as LiveState;
      byId('member').textContent = state.status.member;
      document.title = `blockgate ${state.status.member}`;
      charts.setSubjects(subjectsOf(state));
      if (pendingHistory) {
        charts.history(pendingHistory);
        pendingHistory = undefined;
      }
      view.render(state);
      byId('updated').textContent = new Date().toLocaleTimeString();
      return;
    }
    case 'sample':
      charts.add(data as Sample);
      return;
  }
}

async function connect(): Promise<void> {
  live?.stop();
  if (!storedToken()) {
    showTokenForm('Paste an API token: DATA_DIR/api/read.token to watch, admin.token to act.');
    return;
  }
  try {
    role = (await apiRequest<{ role: 'admin' | 'read' }>('api/v1/whoami')).role;
  } catch (err) {
    showTokenForm(err instanceof ApiFailure && err.status === 401 ? `Token refused: ${err.message}` : `Member not reachable: ${String(err)}`);
    return;
  }
  byId('token-form').hidden = true;
  fill('who', h('span', { 'data-role': role }, role === 'admin' ? 'admin token' : 'read-only token'), ' ', h('button', { type: 'button', id: 'forget-token' }, 'forget token'));
  document.body.dataset.role = role;
  live = followLive({
    onEvent,
    onLink(up, reason, unauthorized) {
      if (up) setLink('live', 'up');
      else if (unauthorized) {
        setLink(`token refused: ${reason ?? ''}`, 'auth');
        showTokenForm(`Token refused: ${reason ?? ''}`);
      } else setLink(`reconnecting (${reason ?? 'stream lost'})`, 'down');
    },
  });
}

function showTokenForm(message: string): void {
  live?.stop();
  role = undefined;
  delete document.body.dataset.role;
  fill('who');
  byId('token-message').textContent = message;
  byId('token-form').hidden = false;
}

async function runAction(device: string, action: string, field: string | undefined, value: string | number | undefined): Promise<void> {
  const body = field === undefined ? {} : { [field]: value };
  try {
    await apiRequest(`api/v1/devices/${encodeURIComponent(device)}/actions/${encodeURIComponent(action)}`, { method: 'POST', body });
    toast(`${action}${value !== undefined ? ` ${value}` : ''} on ${device}: done`, 'ok');
  } catch (err) {
    toast(`${action}${value !== undefined ? ` ${value}` : ''} on ${device} refused: ${err instanceof Error ? err.message : String(err)}`, 'error');
  }
}

document.addEventListener('click', (event) => {
  const target = event.target as HTMLElement;
  if (target.id === 'forget-token') {
    forgetToken();
    showTokenForm('Token forgotten.');
    return;
  }
  const button = target.closest('button.action');
  if (!(button instanceof HTMLButtonElement) || button.closest('form')) return;
  const { device, action, field, value } = button.dataset;
  if (device && action) void runAction(device, action, field, value);
});

document.addEventListener('submit', (event) => {
  const form = event.target as HTMLFormElement;
  event.preventDefault();
  if (form.id === 'token-form') {
    const input = form.elements.namedItem('token') as HTMLInputElement;
    storeToken(input.value);
    input.value = '';
    void connect();
    return;
  }
  if (!form.classList.contains('action-form')) return;
  const { device, action, field, type } = form.dataset;
  const input = form.elements.namedItem('value') as HTMLInputElement | null;
  const value = input ? (type === 'number' ? Number(input.value) : input.value) : undefined;
  if (device && action) void runAction(device, action, field, value);
});

void connect();
