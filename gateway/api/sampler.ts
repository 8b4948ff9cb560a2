import type { IoStats } from '../../fabric/stats.js';
import type { FabricSwitch } from '../../fabric/switch.js';
import { IDLE, ratesBetween, totalsOf, type Rates, type Totals } from './rates.js';

/** One tick: the rates of every export and device over the last interval. */
export interface Sample {
  /** Milliseconds since the epoch, at the end of the interval. */
  readonly t: number;
  readonly exports: Readonly<Record<string, Rates>>;
  readonly devices: Readonly<Record<string, Rates>>;
}

export interface SamplerOptions {
  /** Default 1 s. */
  readonly intervalMs?: number;
  /** How much history a newly opened dashboard gets at once; default 5 minutes. */
  readonly keepMs?: number;
}

/**
 * Samples the switch's counters every second and keeps the last five minutes, so a
 * dashboard opened now draws the recent past at once and then follows live. Costs one
 * pass over the counters per second, whether anyone watches or not.
 */
export class RateSampler {
  readonly intervalMs: number;
  private readonly keep: number;
  private readonly ring: Sample[] = [];
  private readonly previous = { exports: new Map<string, Totals>(), devices: new Map<string, Totals>() };
  private previousAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(sample: Sample) => void>();

  constructor(
    private readonly fabric: FabricSwitch,
    options: SamplerOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 1000;
    this.keep = Math.max(1, Math.ceil((options.keepMs ?? 300_000) / this.intervalMs));
  }

  start(): void {
    if (this.timer) return;
    this.take(); // the baseline: rates start from here
    this.ring.length = 0;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }

  history(): Sample[] {
    return [...this.ring];
  }

  /** Called with each new sample; returns the unsubscribe function. */
  subscribe(listener: (sample: Sample) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private tick(): void {
    const sample = this.take();
    this.ring.push(sample);
    if (this.ring.length > this.keep) this.ring.shift();
    for (const listener of this.listeners) listener(sample);
  }

  private take(): Sample {
    const now = Date.now();
    const seconds = Math.max(0.001, (now - (this.previousAt || now - this.intervalMs)) / 1000);
    this.previousAt = now;
    const exports = this.scope(this.fabric.listExports().map((e) => e.name), this.fabric.exportStats, this.previous.exports, seconds);
    const devices = this.scope(this.fabric.listDevices().map((d) => d.name), this.fabric.deviceStats, this.previous.devices, seconds);
    return { t: now, exports, devices };
  }

  private scope(names: string[], stats: ReadonlyMap<string, IoStats>, previous: Map<string, Totals>, seconds: number): Record<string, Rates> {
    const out: Record<string, Rates> = {};
    const seen = new Set<string>();
    for (const name of names) {
      seen.add(name);
      const s = stats.get(name);
      // An export nobody has opened yet has no counters: it charts as idle.
      const totals = s ? totalsOf(s) : IDLE;
      out[name] = ratesBetween(previous.get(name), totals, seconds);
      previous.set(name, totals);
    }
    // An export or device removed by a configuration change takes its baseline with it.
    for (const name of previous.keys()) if (!seen.has(name)) previous.delete(name);
    return out;
  }
}
