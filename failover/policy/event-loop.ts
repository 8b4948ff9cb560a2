import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';

/** How often the worst delay is taken and the histogram restarted. */
const WINDOW_MS = 1000;

/**
 * This member's event-loop delay: the worst over the last two one-second windows (a member
 * whose loop stalls answers nothing in time, whatever else is healthy), and the last time the
 * loop itself was stalled past a limit (then the silences it measured are its own fault).
 */
export class EventLoopMonitor {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private previousMaxMs = 0;
  private currentMaxMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastTick = performance.now();
  /** performance.now() when the loop last came back from a stall, and how long it was. */
  lastStall: { readonly atMs: number; readonly ms: number } | undefined;

  constructor(private readonly stallMs: number) {}

  start(): void {
    this.histogram.enable();
    this.lastTick = performance.now();
    this.timer = setInterval(() => this.tick(), WINDOW_MS);
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }

  /** The worst delay (ms) over the last one to two seconds. */
  recentMaxMs(): number {
    return Math.max(this.previousMaxMs, this.currentMaxMs, this.histogram.max / 1e6, performance.now() - this.lastTick - WINDOW_MS);
  }

  /** True when this member's own loop was stalled within the last `ms`: its view of others' silence is unreliable. */
  stalledWithin(ms: number): boolean {
    return this.lastStall !== undefined && performance.now() - this.lastStall.atMs < ms;
  }

  private tick(): void {
    const now = performance.now();
    const late = now - this.lastTick - WINDOW_MS;
    this.lastTick = now;
    this.previousMaxMs = this.currentMaxMs;
    this.currentMaxMs = Math.max(this.histogram.max / 1e6, late);
    this.histogram.reset();
    if (late > this.stallMs) this.lastStall = { atMs: now, ms: late };
  }
}
