import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, type ConfigProblem } from '../../failover/config/errors.js';
import type { ConfigRecord } from '../../failover/config/store.js';
import type { ApplyResult, GenerationDiff } from '../../member/config-control.js';
import { ApiError } from './api-client.js';
import { appliedText, generationDiffText, generationsText, planText, problemsText, recordText, type GenerationSummary } from './config-text.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_REFUSED, UsageError, reportError } from './exit.js';
import { memberPoolFrom, parseMemberArgs } from './member-options.js';
import type { MemberPool } from './member-pool.js';
import { HELP } from './usage.js';

/**
 * `blockgate config show|history|diff|apply|rollback`: a running member's live configuration
 * through its API (gateway/api/config.ts). Reads and dry runs go to any member that
 * answers; an apply or a rollback goes to the first member that surely received it, as
 * every change does. FILE is read here and sent as text with its directory, so relative
 * backing-file paths resolve as they would in `serve --config FILE` on the member's host.
 */
const SUBCOMMANDS = ['show', 'history', 'diff', 'apply', 'rollback'] as const;
type Sub = (typeof SUBCOMMANDS)[number];

interface ConfigView {
  readonly generation: number | null;
  readonly current: ConfigRecord | null;
  readonly generations: GenerationSummary[];
}

export async function configCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '-h' || sub === '--help' || sub === 'help') {
    process.stdout.write(HELP.get('config')!);
    return sub === undefined ? 2 : EXIT_OK;
  }
  if (!SUBCOMMANDS.includes(sub as Sub)) throw new UsageError(`unknown config command ${JSON.stringify(sub)} (config ${SUBCOMMANDS.join('|')})`);
  const { values, positionals } = parseMemberArgs(rest, {
    json: { type: 'boolean' },
    ...(sub === 'show' && { generations: { type: 'boolean' }, generation: { type: 'string', short: 'g' } }),
    ...((sub === 'apply' || sub === 'rollback') && { 'dry-run': { type: 'boolean' } }),
  });
  if (values.help) {
    process.stdout.write(HELP.get(`config ${sub}`)!);
    return EXIT_OK;
  }
  const out = { json: values.json === true, dryRun: values['dry-run'] === true };
  switch (sub as Sub) {
    case 'show': {
      const gen = typeof values.generation === 'string' ? values.generation : undefined;
      const picked = [positionals.length > 0, gen !== undefined, values.generations === true].filter(Boolean).length;
      if (positionals.length > 1 || picked > 1) throw new UsageError('expected: config show [GEN | --generation GEN | --generations]');
      return show(memberPoolFrom(values), positionals[0] ?? gen, values.generations === true, out.json);
    }
    case 'history':
      if (positionals.length > 0) throw new UsageError('expected: config history');
      return show(memberPoolFrom(values), undefined, true, out.json);
    case 'diff':
      if (positionals.length === 2) return diffGenerations(memberPoolFrom(values), generationArg(positionals[0]!), generationArg(positionals[1]!), out.json);
      if (positionals.length !== 1) throw new UsageError('expected: config diff FILE | config diff GEN GEN');
      return sendFile(memberPoolFrom(values), positionals[0]!, { ...out, dryRun: true });
    case 'apply':
      if (positionals.length !== 1) throw new UsageError('expected: config apply FILE');
      return sendFile(memberPoolFrom(values), positionals[0]!, out);
    case 'rollback': {
      if (positionals.length !== 1) throw new UsageError('expected: config rollback GEN');
      const generation = generationArg(positionals[0]!);
      return change(memberPoolFrom(values), '/api/v1/config/rollback', { generation, ...(out.dryRun && { dryRun: true }) }, `rollback to generation ${generation}`, out);
    }
  }
}

function generationArg(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`a generation is a positive integer (got ${JSON.stringify(value)})`);
  return Number(value);
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

async function show(pool: MemberPool, gen: string | undefined, list: boolean, json: boolean): Promise<number> {
  if (gen !== undefined) {
    const { body } = await pool.get<ConfigRecord>(`/api/v1/config/generations/${generationArg(gen)}`);
    if (json) printJson(body);
    else process.stdout.write(recordText(body, stringify(body.config)));
    return EXIT_OK;
  }
  const { member, body } = await pool.get<ConfigView>('/api/v1/config');
  if (list) {
    if (json) printJson({ generation: body.generation, generations: body.generations });
    else process.stdout.write(generationsText(body.generation, body.generations));
    return EXIT_OK;
  }
  if (json) printJson(body.current);
  else if (body.current) process.stdout.write(recordText(body.current, stringify(body.current.config)));
  else process.stdout.write(`${member} runs no stored configuration (the demo)\n`);
  return body.current ? EXIT_OK : EXIT_FAILURE;
}

async function diffGenerations(pool: MemberPool, from: number, to: number, json: boolean): Promise<number> {
  const { value } = await pool.one(async (c) => (await c.post<GenerationDiff>('/api/v1/config/diff', { from, to })).body);
  if (json) printJson(value);
  else process.stdout.write(generationDiffText(value));
  return EXIT_OK;
}

/** FILE's text and directory, for diff (a dry run) or apply. */
async function sendFile(pool: MemberPool, file: string, out: { json: boolean; dryRun: boolean }): Promise<number> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  // A dry run of a file is the diff endpoint: the same answer as apply with dryRun.
  return change(pool, out.dryRun ? '/api/v1/config/diff' : '/api/v1/config/apply', { text, baseDir: dirname(resolve(file)) }, file, out);
}

/**
 * An apply or rollback, or its dry run. A dry run changes nothing, so any member may
 * answer it; the change itself goes where MemberPool.post sends changes. A dry run that
 * lists refusals exits 5, as the apply would: scripts can test before applying.
 */
async function change(pool: MemberPool, path: string, body: Record<string, unknown>, what: string, out: { json: boolean; dryRun: boolean }): Promise<number> {
  let answer: { member: string; result: ApplyResult };
  try {
    answer = out.dryRun
      ? await pool.one(async (c) => (await c.post<ApplyResult>(path, body)).body).then((a) => ({ member: a.member, result: a.value }))
      : await pool.post<ApplyResult>(path, body).then((a) => ({ member: a.member, result: a.body }));
  } catch (err) {
    return reportRefusal(err, what, out.json);
  }
  const { member, result } = answer;
  if (out.json) printJson({ member, ...result });
  else process.stdout.write(result.dryRun ? planText(member, what, result) : appliedText(member, what, result));
  return result.refused.length > 0 ? EXIT_REFUSED : EXIT_OK;
}

/**
 * The member's 409 (cannot make it live) and 400 (invalid) list every problem with its
 * field: print them one a line (with --json, the member's answer on stdout as well).
 * An invalid configuration exits 2, as check-config does; a refusal 5.
 */
function reportRefusal(err: unknown, what: string, json: boolean): number {
  if (!(err instanceof ApiError)) throw err;
  const problems = (err.body as { problems?: ConfigProblem[] } | undefined)?.problems;
  if (!Array.isArray(problems) || (err.status !== 400 && err.status !== 409)) throw err;
  if (json) printJson(err.body);
  if (err.status === 400) return reportError(new ConfigError(problems), what);
  process.stderr.write(`blockgate: ${what}: refused: the member cannot make ${problems.length === 1 ? 'this change' : 'these changes'} live; nothing was changed:\n${problemsText(problems)}`);
  return EXIT_REFUSED;
}
