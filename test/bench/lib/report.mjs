// The benchmark's results as markdown: one table per comparison, each side's median and
// range over the rounds, and the ratio of medians for each compared pair with its target.
import { LOWER_IS_BETTER } from './fio.mjs';

/** Targets: what a ratio (or a value) should be; `met(subject, baseline)` on medians. */
export const atLeast = (r) => ({ text: `≥ ${r.toFixed(2)}`, met: (s, b) => s / b >= r });
export const atMost = (r) => ({ text: `≤ ${r.toFixed(2)}`, met: (s, b) => s / b <= r });
export const within = (us) => ({ text: `≤ baseline + ${us} µs`, met: (s, b) => s <= b + us });

export function median(values) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

function formatValue(metric, v) {
  if (!Number.isFinite(v)) return 'n/a';
  if (metric === 'IOPS') return Math.round(v).toLocaleString('en-US');
  if (metric === 'MiB/s') return v.toFixed(0);
  if (Math.abs(v) < 10) return v.toFixed(2);
  return v.toFixed(1);
}

/** "median (min–max)" over the rounds; a lone sample is shown alone. */
function cell(metric, samples) {
  const finite = samples.filter(Number.isFinite);
  if (finite.length <= 1) return formatValue(metric, finite[0] ?? NaN);
  return `${formatValue(metric, median(finite))} (${formatValue(metric, Math.min(...finite))}–${formatValue(metric, Math.max(...finite))})`;
}

function ratioCell(subject, baseline, target) {
  const ratio = subject / baseline;
  const shown = Number.isFinite(ratio) ? ratio.toFixed(2) : 'n/a';
  if (!target) return shown;
  const met = Number.isFinite(subject) && Number.isFinite(baseline) ? target.met(subject, baseline) : undefined;
  return `${shown} ${met === undefined ? '' : met ? '✓' : '✗'} (${target.text})`;
}

/**
 * sections: [{ title, labels: [side…], pairs: [[s, b]…], rows: [{ workload, metric,
 * samples: [[…per side]], targets: [per pair] }], error?, note? }]
 */
export function markdownReport({ header, sections }) {
  const lines = [
    '# blockgate benchmark',
    '',
    ...header.map((h) => `- ${h}`),
    '- Each cell: median (min–max) over the rounds. Ratios are of medians: above 1 is better for IOPS and MiB/s, below 1 for the metrics marked ↓ (latency, CPU per GiB, memory). ✓/✗: the target in brackets met or not in this run.',
  ];
  for (const s of sections) {
    const ratioHeads = s.pairs.map(([a, b]) => `${s.labels[a]} ÷ ${s.labels[b]}`);
    lines.push('', `## ${s.title}`, '');
    if (s.note) lines.push(s.note, '');
    lines.push(`| workload | metric | ${[...s.labels, ...ratioHeads].join(' | ')} |`, `| --- | --- | ${[...s.labels, ...ratioHeads].map(() => '---:').join(' | ')} |`);
    if (s.error) lines.push(`| failed: ${s.error.replaceAll('|', '\\|')} | ${[...s.labels, ...ratioHeads].map(() => '').join(' | ')} |`);
    for (const r of s.rows) {
      const medians = r.samples.map(median);
      const metric = LOWER_IS_BETTER.has(r.metric) ? `${r.metric} ↓` : r.metric;
      // A row with `text` shows it as it is (no ratio).
      const ratios = s.pairs.map(([a, b], i) => (r.text ? '' : ratioCell(medians[a], medians[b], r.targets?.[i])));
      const cells = r.text ?? r.samples.map((v) => cell(r.metric, v));
      lines.push(`| ${r.workload} | ${metric} | ${[...cells, ...ratios].join(' | ')} |`);
    }
  }
  return lines.join('\n') + '\n';
}
