import type { ConfigProblem } from '../../failover/config/errors.js';
import type { ConfigRecord } from '../../failover/config/store.js';
import type { ApplyResult, GenerationDiff } from '../../member/config-control.js';
import { recordHeader } from './config-record.js';
import { renderTable } from './table.js';

/** What `blockgate config` prints for people; --json prints the API's answers instead. */

export type GenerationSummary = Pick<ConfigRecord, 'generation' | 'checksum' | 'writtenBy' | 'writtenAt' | 'source'>;

export function generationsText(running: number | null, generations: readonly GenerationSummary[]): string {
  if (generations.length === 0) return 'no configuration stored: the member runs the demo\n';
  return renderTable(
    ['GENERATION', 'WRITTEN', 'BY', 'SOURCE', 'CHECKSUM'],
    generations.map((g) => [`${g.generation}${g.generation === running ? ' (running)' : ''}`, g.writtenAt, g.writtenBy, g.source, g.checksum]),
  );
}

export function recordText(record: ConfigRecord, yaml: string): string {
  return `# ${recordHeader(record)}\n${yaml}`;
}

/** The change lines, then the exports whose clients are (or would be) disconnected. */
function changesText(changes: readonly string[], dropped: readonly string[], dropVerb: string): string {
  const lines = changes.map((c) => `  ${c}\n`).join('');
  const clients = dropped.length === 0 ? '' : `clients ${dropVerb} disconnected from: ${dropped.map((e) => `export ${e}`).join(', ')}\n`;
  return lines + clients;
}

export function problemsText(problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `  ${p.field}: ${p.problem}\n`).join('');
}

/** A dry run (`config diff FILE`, `apply --dry-run`, `rollback --dry-run`). */
export function planText(member: string, what: string, r: ApplyResult): string {
  const head = `${what} against generation ${r.generation ?? '(none: the demo)'} on ${member}`;
  if (r.diff.empty) return `${head}: no changes\n`;
  const body = `${head}:\n${changesText(r.changes, r.diff.droppedExports, 'would be')}`;
  if (r.refused.length === 0) return `${body}the member can make these changes live\n`;
  return `${body}refused: the member cannot make ${r.refused.length === 1 ? 'this change' : 'these changes'} live (applying would change nothing):\n${problemsText(r.refused)}`;
}

/** An apply or a rollback that ran. */
export function appliedText(member: string, what: string, r: ApplyResult): string {
  if (r.diff.empty) return `${what}: no changes; ${member} runs generation ${r.generation}\n`;
  return `${what}: applied on ${member}, stored as generation ${r.generation}:\n${changesText(r.changes, r.diff.droppedExports, 'were')}`;
}

export function generationDiffText(d: GenerationDiff): string {
  if (d.diff.empty) return `generation ${d.from} -> ${d.to}: no changes\n`;
  return `generation ${d.from} -> ${d.to}:\n${changesText(d.changes, d.diff.droppedExports, 'would be')}`;
}
