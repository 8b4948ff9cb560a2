import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { logger } from '../../fabric/log.js';

/**
 * The Policy Manager's alarms: a fault found by health monitoring, raised once, cleared when
 * it ends, and characterized from its history — transient (it cleared soon), intermittent
 * (it keeps coming back), permanent (it has lasted too long). Alarms are logged, counted in
 * the metrics and listed in /api/v1/status; a link alarm changes no role.
 */

export type AlarmKind =
  /** A management network is silent towards a peer that answers on another one (its self-test passed). */
  | 'link-down'
  /** A peer failed: silent on every network, or its self-test failed. */
  | 'member-failed'
  /** A peer speaks a protocol or reads a schema this cluster cannot work with. */
  | 'incompatible'
  /** A member (this one or a peer) is quarantined at its failure limit. */
  | 'quarantined';

export type Persistence = 'active' | 'transient' | 'intermittent' | 'permanent';

export interface Alarm {
  readonly kind: AlarmKind;
  readonly network?: string;
  readonly peer?: string;
  readonly message: string;
  readonly raisedAt: string;
  readonly clearedAt?: string;
  readonly persistence: Persistence;
  /** How often this same alarm was raised within the history window (this time included). */
  readonly occurrences: number;
}

interface Entry {
  alarm: Alarm;
  startMs: number;
}

export interface AlarmEvents {
  raised: [Alarm];
  cleared: [Alarm];
}

const HISTORY = 100;
/** Raised this often within ten permanent-periods, an alarm is intermittent. */
const INTERMITTENT_COUNT = 3;

const log = logger('alarms');

export class Alarms extends EventEmitter<AlarmEvents> {
  private readonly active = new Map<string, Entry>();
  private readonly past: Alarm[] = [];
  /** Raise times (performance.now()) per alarm key, for the intermittent count. */
  private readonly raises = new Map<string, number[]>();

  constructor(private readonly permanentMs: number) {
    super();
  }

  static key(kind: AlarmKind, network?: string, peer?: string): string {
    return `${kind}/${network ?? ''}/${peer ?? ''}`;
  }

  /** Raise (or keep) an alarm; the message may be updated while it lasts. */
  raise(kind: AlarmKind, fields: { network?: string; peer?: string; message: string }): Alarm {
    const key = Alarms.key(kind, fields.network, fields.peer);
    const existing = this.active.get(key);
    if (existing) {
      existing.alarm = { ...existing.alarm, message: fields.message };
      return existing.alarm;
    }
    const now = performance.now();
    const times = (this.raises.get(key) ?? []).filter((t) => t > now - 10 * this.permanentMs);
    times.push(now);
    this.raises.set(key, times);
    const alarm: Alarm = {
      kind,
      ...(fields.network !== undefined && { network: fields.network }),
      ...(fields.peer !== undefined && { peer: fields.peer }),
      message: fields.message,
      raisedAt: new Date().toISOString(),
      persistence: times.length >= INTERMITTENT_COUNT ? 'intermittent' : 'active',
      occurrences: times.length,
    };
    this.active.set(key, { alarm, startMs: now });
    log.warn({ alarm: kind, network: alarm.network, peer: alarm.peer, occurrences: alarm.occurrences, persistence: alarm.persistence }, `alarm: ${alarm.message}`);
    this.emit('raised', alarm);
    return alarm;
  }

  clear(kind: AlarmKind, network?: string, peer?: string, why = 'cleared'): void {
    const key = Alarms.key(kind, network, peer);
    const entry = this.active.get(key);
    if (!entry) return;
    this.active.delete(key);
    const lasted = performance.now() - entry.startMs;
    const persistence: Persistence =
      entry.alarm.persistence === 'intermittent' ? 'intermittent' : lasted >= this.permanentMs ? 'permanent' : 'transient';
    const alarm: Alarm = { ...entry.alarm, clearedAt: new Date().toISOString(), persistence };
    this.past.push(alarm);
    if (this.past.length > HISTORY) this.past.shift();
    log.info({ alarm: kind, network, peer, lastedMs: Math.round(lasted), persistence, why }, `alarm cleared: ${alarm.message}`);
    this.emit('cleared', alarm);
  }

  /** Clear every active alarm about `peer` of `kind` except on the given networks. */
  clearWhere(predicate: (a: Alarm) => boolean, why?: string): void {
    for (const { alarm } of [...this.active.values()]) if (predicate(alarm)) this.clear(alarm.kind, alarm.network, alarm.peer, why);
  }

  isActive(kind: AlarmKind, network?: string, peer?: string): boolean {
    return this.active.has(Alarms.key(kind, network, peer));
  }

  /** Active alarms, an active one turning permanent once it has lasted long enough. */
  list(): Alarm[] {
    const now = performance.now();
    return [...this.active.values()].map(({ alarm, startMs }) =>
      alarm.persistence === 'active' && now - startMs >= this.permanentMs ? { ...alarm, persistence: 'permanent' as const } : alarm,
    );
  }

  history(): readonly Alarm[] {
    return this.past;
  }
}
