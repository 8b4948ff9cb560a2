// The benchmark's results as markdown: one table per comparison, with blockgate/baseline
// ratios and the ratio each comparison aims for.
import { LOWER_IS_BETTER } from './fio.mjs';

function formatValue(metric, v) {
  if (!Number.isFinite(v)) return 'n/a';
  if (metric === 'IOPS') return Math.round(v).toLocaleString('en-US');
  if (metric === 'MiB/s') return v.toFixed(0);
  return v.toFixed(1);
}

/** The target as shown, and whether the ratio meets it (undefined: no target). */
function targetCell(metric, ratio, minimum) {
  if (minimum === undefined) return '—';
  const lower = LOWER_IS_BETTER.has(metric);
  const bound = lower ? 1 / minimum : minimum;
  const met = Number.isFinite(ratio) ? (lower ? ratio <= bound : ratio >= bound) : undefined;
  return `${lower ? '≤' : '≥'} ${bound.toFixed(2)}${met === undefined ? '' : met ? ' ✓' : ' ✗'}`;
}

/**
 * sections: [{ title, subjectLabel, baselineLabel, rows: [{ workload, metric, subject,
 * baseline, target? }] }]
 */
export function markdownReport({ header, sections }) {
  const lines = [
    '# blockgate benchmark',
    '',
    ...header.map((h) => `- ${h}`),
    '- ratio = blockgate side ÷ baseline: above 1 is better for IOPS and MiB/s; below 1 is better for latency (µs, marked ↓). target: the ratio aimed for (✓ met, ✗ not met in this run).',
  ];
  for (const s of sections) {
    lines.push(
      '',
      `## ${s.title}`,
      '',
      `| workload | metric | ${s.subjectLabel} | ${s.baselineLabel} | ratio | target |`,
      '| --- | --- | ---: | ---: | ---: | --- |',
    );
    if (s.error) lines.push(`| failed: ${s.error.replaceAll('|', '\\|')} | | | | | |`);
    for (const r of s.rows) {
      const ratio = r.subject / r.baseline;
      const metric = LOWER_IS_BETTER.has(r.metric) ? `${r.metric} ↓` : r.metric;
      lines.push(
        `| ${r.workload} | ${metric} | ${formatValue(r.metric, r.subject)} | ${formatValue(r.metric, r.baseline)} | ${Number.isFinite(ratio) ? ratio.toFixed(2) : 'n/a'} | ${targetCell(r.metric, ratio, r.target)} |`,
      );
    }
  }
  return lines.join('\n') + '\n';
}
