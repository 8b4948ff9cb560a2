import type UPlot from 'uplot';
import type { Rates } from '../rates.js';
import type { Sample } from '../sampler.js';
import { h } from './dom.js';
import { formatCount, formatLatency, formatRate } from '../present/format.js';

/** uPlot, loaded by a classic <script> before this module (it has no ES module the browser can import by name). */
declare const uPlot: typeof UPlot;

/**
 * The live charts: for each export (and each device that several exports share) IOPS,
 * MiB/s and p50/p99 latency over the last five minutes, fed one sample a second. uPlot
 * draws them: made for dense time series, small, no dependencies.
 */

const WINDOW_S = 300;
const READ = '#2b7bb9';
const WRITE = '#d9822b';
const P50 = '#3b8f3b';
const P99 = '#b03a48';

type Metric = 'iops' | 'throughput' | 'latency';

interface Panel {
  readonly subject: ChartSubject;
  readonly card: HTMLElement;
  readonly headline: HTMLElement;
  readonly charts: Record<Metric, UPlot>;
}

/** What a chart card stands for: an export, or a device behind several exports. */
export interface ChartSubject {
  readonly key: string;
  readonly title: string;
  pick(sample: Sample): Rates | undefined;
}

/** The two series each chart draws, from one subject's rates. */
const SERIES: Record<Metric, (r: Rates) => [number | null, number | null]> = {
  iops: (r) => [r.readIops, r.writeIops],
  throughput: (r) => [r.readBps, r.writeBps],
  latency: (r) => [r.p50us, r.p99us],
};

export class Charts {
  /** The last five minutes of samples; every chart is drawn from these. */
  private samples: Sample[] = [];
  private readonly panels = new Map<string, Panel>();

  constructor(private readonly container: HTMLElement) {
    window.addEventListener('resize', () => {
      for (const p of this.panels.values()) for (const c of Object.values(p.charts)) c.setSize(this.size());
    });
  }

  /** Which cards to show, in order; cards of subjects that went away are removed. */
  setSubjects(subjects: ChartSubject[]): void {
    const wanted = new Set(subjects.map((s) => s.key));
    for (const [key, panel] of this.panels) {
      if (wanted.has(key)) continue;
      for (const c of Object.values(panel.charts)) c.destroy();
      panel.card.remove();
      this.panels.delete(key);
    }
    let added = false;
    for (const s of subjects) {
      if (this.panels.has(s.key)) continue;
      this.panels.set(s.key, this.panel(s));
      added = true;
    }
    subjects.forEach((s, i) => {
      const card = this.panels.get(s.key)!.card;
      if (this.container.children[i] !== card) this.container.insertBefore(card, this.container.children[i] ?? null);
    });
    if (added) this.redraw();
  }

  /** Start over from the member's history (a new stream). */
  history(samples: readonly Sample[]): void {
    this.samples = [...samples];
    this.redraw();
  }

  add(sample: Sample): void {
    this.samples.push(sample);
    const cutoff = sample.t - WINDOW_S * 1000;
    while (this.samples.length > 0 && this.samples[0]!.t < cutoff) this.samples.shift();
    this.redraw();
  }

  private redraw(): void {
    const times = this.samples.map((s) => s.t / 1000);
    for (const p of this.panels.values()) {
      const rates = this.samples.map((s) => p.subject.pick(s));
      for (const metric of Object.keys(SERIES) as Metric[]) {
        const pairs = rates.map((r) => (r ? SERIES[metric](r) : [null, null]));
        p.charts[metric].setData([times, pairs.map((x) => x[0]), pairs.map((x) => x[1])]);
      }
      const last = rates[rates.length - 1];
      p.card.dataset.iops = String(last ? last.iops : 0);
      p.headline.textContent = last ? `${formatCount(last.iops)} IOPS · ${formatRate(last.readBps + last.writeBps)} · p99 ${formatLatency(last.p99us)}` : 'no data yet';
    }
  }

  private size(): { width: number; height: number } {
    const width = Math.max(240, Math.floor((this.container.clientWidth - 48) / 3));
    return { width, height: 150 };
  }

  private panel(subject: ChartSubject): Panel {
    const headline = h('span', { class: 'headline' }, 'idle');
    const slots = { iops: h('div', { class: 'chart' }), throughput: h('div', { class: 'chart' }), latency: h('div', { class: 'chart' }) };
    const card = h('div', { class: 'chart-card', 'data-subject': subject.key, 'data-iops': '0' }, h('h3', {}, subject.title, ' ', headline), h('div', { class: 'chart-row' }, slots.iops, slots.throughput, slots.latency));
    /** Linear from 0 for rates (at least `floor` tall, so idle charts have sensible ticks); log for latency. */
    const make = (slot: HTMLElement, title: string, labels: [string, string], colors: [string, string], value: (v: number) => string, y: UPlot.Scale, yAxis: Partial<UPlot.Axis> = {}): UPlot =>
      new uPlot(
        {
          title,
          ...this.size(),
          scales: { x: { time: true }, y },
          axes: [{ space: 70, values: (_u, ticks) => ticks.map(clock) }, { size: 84, values: (_u, ticks) => ticks.map(value), ...yAxis }],
          series: [
            {},
            { label: labels[0], stroke: colors[0], width: 1.5, value: (_u, v) => (v === null ? '–' : value(v)) },
            { label: labels[1], stroke: colors[1], width: 1.5, value: (_u, v) => (v === null ? '–' : value(v)) },
          ],
          legend: { live: true },
        },
        [[], [], []],
        slot,
      );
    const linear = (floor: number): UPlot.Scale => ({ range: (_u, _min, max) => [0, Math.max(max, floor) * 1.1] });
    return {
      subject,
      card,
      headline,
      charts: {
        iops: make(slots.iops, 'IOPS', ['read', 'write'], [READ, WRITE], formatCount, linear(10)),
        throughput: make(slots.throughput, 'throughput', ['read', 'write'], [READ, WRITE], formatRate, linear(1024 * 1024)),
        // Latencies span microseconds to seconds: a log scale keeps p50 visible beside p99.
        latency: make(
          slots.latency,
          'latency (reads and writes)',
          ['p50', 'p99'],
          [P50, P99],
          (us) => formatLatency(us),
          { distr: 3, log: 10, range: (_u, min, max) => [Math.min(min || 10, 10), Math.max(max || 1000, 1000)] },
          // Every decade labelled (uPlot thins log-axis labels by default).
          { splits: (_u, _i, min, max) => decades(min, max), filter: (_u, splits) => splits },
        ),
      },
    };
  }
}

/** Seconds since the epoch → "23:41:05". */
function clock(t: number): string {
  const d = new Date(t * 1000);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** 10, 100, 1000… between min and max: one grid line per decade on the latency chart. */
function decades(min: number, max: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(Math.max(min, 1))); e <= Math.ceil(Math.log10(Math.max(max, 1))); e++) out.push(10 ** e);
  return out;
}
