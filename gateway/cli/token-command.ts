import { parseArgs } from 'node:util';
import { newToken, type Role } from '../api/token-files.js';
import { EXIT_FAILURE, EXIT_OK, UsageError } from './exit.js';
import { MEMBER_PARSE_OPTIONS, memberPoolFrom } from './member-options.js';
import { HELP } from './usage.js';

/**
 * `blockgate token rotate [--read-only]`: a new admin (or read-only) token for every member
 * given. The CLI draws the token and sends the same one to each, so the members of a
 * cluster keep sharing one; each member writes it to its token file and refuses the old
 * one from then on. The new token is printed on stdout — nowhere else shows it.
 */
export async function tokenCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '-h' || sub === '--help' || sub === 'help') {
    process.stdout.write(HELP.get('token')!);
    return sub === undefined ? 2 : EXIT_OK;
  }
  if (sub !== 'rotate') throw new UsageError(`unknown token command ${JSON.stringify(sub)} (token rotate)`);
  const { values, positionals } = parseArgs({
    args: rest,
    strict: true,
    allowPositionals: true,
    options: { ...MEMBER_PARSE_OPTIONS, 'read-only': { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(HELP.get('token rotate')!);
    return EXIT_OK;
  }
  if (positionals.length > 0) throw new UsageError('token rotate takes no arguments');
  const role: Role = values['read-only'] ? 'read' : 'admin';
  const token = newToken(role);
  const pool = memberPoolFrom(values);
  const results = await pool.each((c) => c.post<{ role: Role; path: string }>('/api/v1/tokens/rotate', { role, token }));
  const done = results.filter((r) => r.answer);
  const failed = results.filter((r) => r.error);
  // Nothing rotated anywhere: the first error says why (unreachable, token refused…).
  if (done.length === 0) throw failed[0]!.error!;
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ role, token: done.length > 0 ? token : null, members: results.map((r) => ({ member: r.member, ...(r.answer ? { path: r.answer.body.path } : { error: r.error!.message }) })) }, null, 2)}\n`,
    );
  } else if (done.length > 0) process.stdout.write(`${token}\n`);
  for (const r of done) process.stderr.write(`${r.member}: ${role === 'admin' ? 'admin' : 'read-only'} token replaced; stored in ${r.answer!.body.path}\n`);
  for (const r of failed) process.stderr.write(`blockgate: ${r.member}: not rotated: ${r.error!.message}\n`);
  if (failed.length > 0 && done.length > 0) process.stderr.write('blockgate: the members now have different tokens: rotate again once all answer\n');
  return failed.length > 0 ? EXIT_FAILURE : EXIT_OK;
}
