import { parseArgs } from 'node:util';
import type { ExportView } from '../api/exports.js';
import { deviceStateOf, memberHealth } from '../api/present/health.js';
import type { MemberStatus } from '../api/status.js';
import type { FrontEndSession } from '../sessions.js';
import { EXIT_OK, EXIT_UNHEALTHY, EXIT_UNREACHABLE, UsageError } from './exit.js';
import { devicesText, exportsText, pathRows, pathsText, sessionsText, statusText } from './inspect.js';
import { MEMBER_PARSE_OPTIONS, memberPoolFrom } from './member-options.js';
import type { MemberPool } from './member-pool.js';
import { HELP } from './usage.js';

/**
 * `blockgate status|exports|devices|sessions|paths`: what running members serve and how
 * they are doing, as tables for people or (`--json`) as the API's typed answers for
 * scripts. Each answer comes from one member (the next one when it is down), except the
 * session list: every member knows only its own clients, so all are asked.
 */
export type InspectCommand = 'status' | 'exports' | 'devices' | 'sessions' | 'paths';

export async function inspectCommand(command: InspectCommand, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { ...MEMBER_PARSE_OPTIONS, json: { type: 'boolean' }, check: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(HELP.get(command)!);
    return EXIT_OK;
  }
  if (positionals.length > 0) throw new UsageError(`${command} takes no arguments (got ${JSON.stringify(positionals[0])})`);
  if (values.check && command !== 'status') throw new UsageError('--check is an option of status only');
  const pool = memberPoolFrom(values);
  const json = values.json === true;
  switch (command) {
    case 'status':
      return status(pool, json, values.check === true);
    case 'exports': {
      const { value } = await pool.one(async (c) => ({ exports: (await c.get<{ exports: ExportView[] }>('/api/v1/exports')).body.exports, status: await statusOf(c) }));
      const stateOf = deviceStateOf(value.status);
      return print(json, value.exports.map((e) => ({ ...e, state: stateOf(e.device) })), () => exportsText(value.exports, value.status));
    }
    case 'devices': {
      const { body } = await pool.get<MemberStatus>('/api/v1/status');
      const stateOf = deviceStateOf(body);
      const sets = new Map(body.failoverSets.map((s) => [s.device, s]));
      return print(json, body.devices.map((d) => ({ ...d, state: stateOf(d.name), ...(sets.has(d.name) && { set: sets.get(d.name) }) })), () => devicesText(body));
    }
    case 'sessions':
      return sessions(pool, json);
    case 'paths': {
      const { body } = await pool.get<MemberStatus>('/api/v1/status');
      return print(json, pathRows(body), () => pathsText(body));
    }
  }
}

function statusOf(client: { get<T>(path: string): Promise<{ body: T }> }): Promise<MemberStatus> {
  return client.get<MemberStatus>('/api/v1/status').then((a) => a.body);
}

function print(json: boolean, value: unknown, text: () => string): number {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : text());
  return EXIT_OK;
}

/** `status --check` exits 6 unless every export's device is optimal: for monitoring scripts. */
async function status(pool: MemberPool, json: boolean, check: boolean): Promise<number> {
  const { member, value } = await pool.one(async (c) => ({ status: await statusOf(c), sessions: (await c.get<{ sessions: FrontEndSession[] }>('/api/v1/sessions')).body.sessions }));
  const health = memberHealth(value.status);
  print(json, { answeredBy: member, health, ...value }, () => statusText(member, value.status, value.sessions));
  return check && health !== 'optimal' ? EXIT_UNHEALTHY : EXIT_OK;
}

/** Every member's clients; a member that cannot be reached is reported, the others listed. */
async function sessions(pool: MemberPool, json: boolean): Promise<number> {
  const answers = await pool.each((c) => c.get<{ member: string; sessions: FrontEndSession[] }>('/api/v1/sessions'));
  const failed = answers.filter((a) => a.error);
  const listed = answers.flatMap((a) => (a.answer ? a.answer.body.sessions.map((s) => ({ member: a.answer!.body.member, ...s })) : []));
  if (failed.length === answers.length) throw failed[0]!.error!;
  for (const f of failed) process.stderr.write(`blockgate: ${f.member}: ${f.error!.message}\n`);
  print(json, listed, () => sessionsText(listed, answers.length > 1));
  return failed.length > 0 ? EXIT_UNREACHABLE : EXIT_OK;
}
