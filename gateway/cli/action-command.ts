import { parseArgs } from 'node:util';
import type { FailoverSetState } from '../../failover/set.js';
import type { MemberStatus } from '../api/status.js';
import { EXIT_OK, UsageError } from './exit.js';
import { MEMBER_PARSE_OPTIONS, memberPoolFrom } from './member-options.js';
import { HELP } from './usage.js';

/**
 * `blockgate action DEVICE ACTION [ARG]`: an operator action on a failover set. The set's
 * status says which body field the action's argument fills (`offline r1` → {"replica":
 * "r1"}), so the operator types values, not JSON. `blockgate action DEVICE` lists them.
 */
export async function actionCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { ...MEMBER_PARSE_OPTIONS, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(HELP.get('action')!);
    return EXIT_OK;
  }
  if (positionals.length < 1 || positionals.length > 3) throw new UsageError('expected: action DEVICE [ACTION [ARG]]');
  const [device, action, argument] = positionals as [string, string | undefined, string | undefined];
  const pool = memberPoolFrom(values);
  const { body: status } = await pool.get<MemberStatus>('/api/v1/status');
  const set = status.failoverSets.find((s) => s.device === device);
  if (action === undefined) return listActions(device, set, values.json === true);

  const info = set?.actions.find((a) => a.name === action);
  let body: Record<string, unknown> = {};
  if (info?.argument) {
    if (argument === undefined) throw new UsageError(`${action} takes a ${info.argument.field}: action ${device} ${action} ${info.argument.field.toUpperCase()}`);
    const value = info.argument.type === 'number' ? Number(argument) : argument;
    if (typeof value === 'number' && !Number.isFinite(value)) throw new UsageError(`${action} takes a number as ${info.argument.field} (got ${JSON.stringify(argument)})`);
    body = { [info.argument.field]: value };
  } else if (argument !== undefined && info) throw new UsageError(`${action} takes no argument`);
  // An action the status does not list still goes: the member answers with what it offers.
  const answer = await pool.post<{ status?: { state: string }; set?: FailoverSetState }>(
    `/api/v1/devices/${encodeURIComponent(device)}/actions/${encodeURIComponent(action)}`,
    body,
  );
  if (values.json) process.stdout.write(`${JSON.stringify(answer.body, null, 2)}\n`);
  else {
    const state = answer.body.set?.state ?? answer.body.status?.state;
    process.stdout.write(`${device}: ${action}${argument !== undefined ? ` ${argument}` : ''} done${state ? `; ${device} is ${state}` : ''} (${answer.member})\n`);
  }
  return EXIT_OK;
}

function listActions(device: string, set: FailoverSetState | undefined, json: boolean): number {
  if (!set) throw new UsageError(`device ${JSON.stringify(device)} is no failover set: it has no operator actions`);
  if (json) {
    process.stdout.write(`${JSON.stringify(set.actions, null, 2)}\n`);
    return EXIT_OK;
  }
  const usage = set.actions.map((a) => `  ${`${a.name}${a.argument ? ` ${a.argument.field.toUpperCase()}` : ''}`.padEnd(28)} ${a.description}`);
  process.stdout.write(`actions of ${set.kind} ${device} (${set.state}):\n${usage.join('\n')}\n`);
  return EXIT_OK;
}
