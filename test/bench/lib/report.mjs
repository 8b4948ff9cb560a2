// The benchmark's results as a markdown table with blockgate/baseline ratios.
import { LOWER_IS_BETTER } from './fio.mjs';

function formatValue(metric, v) {
  if (!Number.isFinite(v)) return 'n/a';
  if (metric === 'IOPS') return Math.round(v).toLocaleString('en-US');
  if (metric === 'MiB/s') return v.toFixed(0);
  return v.toFixed(1);
}

/** rows: { comparison, subjectLabel, baselineLabel, workload, metric, subject, baseline } */
export function markdownReport({ header, rows }) {
  const lines = [
    '# blockgate benchmark',
    '',
    ...header.map((h) => `- ${h}`),
    '- ratio = blockgate ÷ baseline: above 1 is better for IOPS and MiB/s; below 1 is better for latency (µs, marked ↓).',
    '',
    '| comparison | workload | metric | blockgate | baseline | ratio |',
    '| --- | --- | --- | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    const ratio = r.subject / r.baseline;
    const metric = LOWER_IS_BETTER.has(r.metric) ? `${r.metric} ↓` : r.metric;
    lines.push(
      `| ${r.subjectLabel} vs ${r.baselineLabel} | ${r.workload} | ${metric} | ${formatValue(r.metric, r.subject)} | ${formatValue(r.metric, r.baseline)} | ${Number.isFinite(ratio) ? ratio.toFixed(2) : 'n/a'} |`,
    );
  }
  return lines.join('\n') + '\n';
}
