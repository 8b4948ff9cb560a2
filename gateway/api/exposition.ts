/**
 * Prometheus text exposition format 0.0.4: metric families, each with one HELP and TYPE
 * line followed by all its samples, however many devices contribute to it.
 */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type MetricType = 'counter' | 'gauge' | 'histogram';
export type Labels = Readonly<Record<string, string>>;

interface Family {
  readonly type: MetricType;
  readonly help: string;
  readonly samples: string[];
}

export class Exposition {
  private readonly families = new Map<string, Family>();

  /** Declare a family (idempotent) so it is rendered even while it has no samples. */
  family(name: string, type: MetricType, help: string): void {
    if (!this.families.has(name)) this.families.set(name, { type, help, samples: [] });
  }

  /** One sample of family `name`; `suffix` is `_bucket`, `_sum` or `_count` for histograms. */
  sample(name: string, labels: Labels, value: number, suffix = ''): void {
    const family = this.families.get(name);
    if (!family) throw new Error(`metric family ${name} was not declared`);
    family.samples.push(`${name}${suffix}${formatLabels(labels)} ${formatValue(value)}`);
  }

  render(): string {
    const out: string[] = [];
    for (const [name, f] of this.families) {
      out.push(`# HELP ${name} ${escapeHelp(f.help)}`, `# TYPE ${name} ${f.type}`, ...f.samples);
    }
    return out.length === 0 ? '' : `${out.join('\n')}\n`;
  }
}

/** Label values escape backslash, double quote and line feed (and nothing else). */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escapes backslash and line feed. */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
