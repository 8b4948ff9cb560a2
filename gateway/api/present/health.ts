import type { MemberStatus } from '../status.js';

/**
 * One reading of device state for every view (dashboard, CLI): a device driven by a
 * failover set has the set's state, any other its own. The member's health is what hosts
 * get — the worst state among exported devices — so a dead path behind a multipath set
 * that still serves reads as that set's `degraded`, not as `failed`.
 */
export type StateOf = (device: string) => string;

const SEVERITY = ['optimal', 'rebuilding', 'degraded', 'failed'];

export function deviceStateOf(status: MemberStatus): StateOf {
  const bySet = new Map(status.failoverSets.map((s) => [s.device, s.state]));
  const byDevice = new Map(status.devices.map((d) => [d.name, d.state]));
  return (device) => bySet.get(device) ?? byDevice.get(device) ?? 'unknown';
}

/** The worst of `states`; unknown states count as failed. */
export function worstState(states: readonly string[]): string {
  const rank = (s: string): number => (SEVERITY.includes(s) ? SEVERITY.indexOf(s) : SEVERITY.length);
  return states.reduce((w, s) => (rank(s) > rank(w) ? s : w), 'optimal');
}

/** The member's health: the worst state of the devices its exports serve. */
export function memberHealth(status: MemberStatus): string {
  const stateOf = deviceStateOf(status);
  return worstState(status.exports.map((e) => stateOf(e.device)));
}
