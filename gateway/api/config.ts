import { isAbsolute } from 'node:path';
import { ConfigError } from '../../failover/config/errors.js';
import { parseConfigText } from '../../failover/config/file.js';
import { redactSecrets } from '../../failover/config/redact.js';
import type { ConfigRecord } from '../../failover/config/store.js';
import type { ConfigControl } from '../../member/config-control.js';
import { UnknownGeneration } from '../../member/live-config.js';
import { ReloadRefused } from '../../member/reload-check.js';
import type { ApiReply } from './jobs.js';

/**
 * The member's configuration, changed live (member/live-config.ts). Secrets (CHAP) are
 * never shown. A configuration is sent as `{"config": {…}}` (a parsed document) or as
 * `{"text": "…"}` (the file's YAML or JSON text); `baseDir` (absolute) is where relative
 * backing-file paths are taken from, as the file's own directory is at start-up.
 *
 *   GET  /api/v1/config                    the running generation's record and the kept generations (newest first)
 *   GET  /api/v1/config/generations/N      one kept generation's record
 *   POST /api/v1/config/diff               {config|text, baseDir?} → what applying it would change and what would be refused (a dry run)
 *                                          {from: N, to: M}        → the changes from kept generation N to M
 *   POST /api/v1/config/apply              {config|text, baseDir?, dryRun?} → applied and stored as a new generation
 *   POST /api/v1/config/rollback           {generation: N, dryRun?}          → generation N applied again (stored as a new one)
 *
 * An invalid configuration answers 400 with every problem (`problems: [{field, problem}]`),
 * a valid one the member cannot take live answers 409 with the refused changes, an
 * unknown generation 404; in each case nothing changed and nothing was stored.
 */
const CONFIG_PATH = /^\/api\/v1\/config(?:\/(diff|apply|rollback|generations\/([^/]+)))?\/?$/;

/** Configurations are bigger than action bodies, but still small. */
export const MAX_CONFIG_BODY = 1024 * 1024;

const DOC_FIELDS = ['config', 'text', 'baseDir', 'dryRun'];

/** Answers a request under /api/v1/config, or returns undefined for any other path. */
export async function routeConfig(
  control: ConfigControl | undefined,
  method: string,
  path: string,
  readBody: (limit: number) => Promise<unknown>,
): Promise<ApiReply | undefined> {
  const m = CONFIG_PATH.exec(path);
  if (!m) return undefined;
  if (!control) return { status: 503, body: { error: 'this member has no live configuration (it was not started by blockgate serve)' } };
  const read = method === 'GET' || method === 'HEAD';
  try {
    if (m[1] === undefined) {
      if (!read) return notAllowed('GET');
      const current = control.current();
      return { status: 200, body: { generation: current?.generation ?? null, current: current ? shown(current) : null, generations: control.generations().map(summary) } };
    }
    if (m[2] !== undefined) {
      if (!read) return notAllowed('GET');
      const n = generationNumber(m[2]);
      const record = control.generation(n);
      if (!record) throw new UnknownGeneration(n);
      return { status: 200, body: shown(record) };
    }
    if (read) return notAllowed('POST');
    const body = asObject(await readBody(MAX_CONFIG_BODY));
    switch (m[1]) {
      case 'diff':
        if ('from' in body || 'to' in body) {
          onlyFields(body, ['from', 'to']);
          return { status: 200, body: control.diff(generationNumber(body.from), generationNumber(body.to)) };
        }
        return { status: 200, body: await control.apply(documentOf(body), { ...originOf(body), dryRun: true }) };
      case 'apply':
        return { status: 200, body: await control.apply(documentOf(body), originOf(body)) };
      default:
        onlyFields(body, ['generation', 'dryRun']);
        return { status: 200, body: await control.rollback(generationNumber(body.generation), { dryRun: dryRunOf(body) }) };
    }
  } catch (err) {
    if (err instanceof ReloadRefused) return problemsReply(409, 'the member cannot make this change live; nothing was changed', err);
    if (err instanceof ConfigError) return problemsReply(400, 'invalid configuration; nothing was changed', err);
    if (err instanceof UnknownGeneration) return { status: 404, body: { error: err.message } };
    if (err instanceof BadRequest) return { status: 400, body: { error: err.message } };
    throw err;
  }
}

class BadRequest extends Error {}

function problemsReply(status: number, summary: string, err: ConfigError): ApiReply {
  return { status, body: { error: `${summary}: ${err.problems.map((p) => `${p.field}: ${p.problem}`).join('; ')}`, problems: err.problems } };
}

function notAllowed(allow: string): ApiReply {
  return { status: 405, body: { error: `use ${allow}` }, headers: { allow } };
}

/** What the API shows of a record: everything but secrets. */
function shown(record: ConfigRecord): ConfigRecord {
  return { ...record, config: redactSecrets(record.config) };
}

function summary({ generation, checksum, writtenBy, writtenAt, source }: ConfigRecord) {
  return { generation, checksum, writtenBy, writtenAt, source };
}

function asObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequest('the body must be a JSON object');
  return body as Record<string, unknown>;
}

function onlyFields(body: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(body).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) throw new BadRequest(`unknown field${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')} (expected ${allowed.join(', ')})`);
}

function documentOf(body: Record<string, unknown>): unknown {
  onlyFields(body, DOC_FIELDS);
  if ('config' in body === 'text' in body) throw new BadRequest('send the configuration as "config" (a JSON object) or as "text" (YAML or JSON), not both');
  if ('config' in body) return body.config;
  if (typeof body.text !== 'string') throw new BadRequest('"text" must be a string (the configuration file\'s YAML or JSON)');
  return parseConfigText(body.text, 'text');
}

function originOf(body: Record<string, unknown>): { source: string; baseDir?: string; dryRun: boolean } {
  const { baseDir } = body;
  if (baseDir !== undefined && (typeof baseDir !== 'string' || !isAbsolute(baseDir))) throw new BadRequest('"baseDir" must be an absolute path');
  return { source: 'api', ...(baseDir !== undefined && { baseDir }), dryRun: dryRunOf(body) };
}

function dryRunOf(body: Record<string, unknown>): boolean {
  if (body.dryRun !== undefined && typeof body.dryRun !== 'boolean') throw new BadRequest('"dryRun" must be true or false');
  return body.dryRun === true;
}

function generationNumber(value: unknown): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) throw new BadRequest(`a generation is a positive integer (got ${JSON.stringify(value)})`);
  return n;
}
