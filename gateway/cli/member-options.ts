import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ROLES, TOKEN_DIR, tokenFileName } from '../api/token-files.js';
import { ApiClient, DEFAULT_MEMBER, parseMemberAddress, type MemberAddress } from './api-client.js';
import { UsageError } from './exit.js';
import { MemberPool } from './member-pool.js';

/**
 * The options every command that talks to running members takes, for node:util parseArgs,
 * and the clients they describe. Precedence: option, then environment, then default.
 */
export const MEMBER_PARSE_OPTIONS = {
  member: { type: 'string', short: 'm', multiple: true },
  'members-file': { type: 'string' },
  timeout: { type: 'string' },
  token: { type: 'string' },
  'token-file': { type: 'string' },
  cacert: { type: 'string' },
} as const;

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

/** A member command's command line: its own options, the member options and --help; positionals allowed. */
export function parseMemberArgs<O extends OptionsConfig>(args: string[], options: O) {
  return parseArgs({ args, strict: true, allowPositionals: true, options: { ...MEMBER_PARSE_OPTIONS, ...options, help: { type: 'boolean', short: 'h' } } });
}

export interface MemberOptionValues {
  readonly member?: string[] | undefined;
  readonly 'members-file'?: string | undefined;
  readonly timeout?: string | undefined;
  readonly token?: string | undefined;
  readonly 'token-file'?: string | undefined;
  readonly cacert?: string | undefined;
}

/**
 * Where a member on this host keeps its tokens, tried in order when none is given: the
 * data directory in $BLOCKGATE_DATA_DIR, ./data (serve's default) and the packaged
 * service's /var/lib/blockgate. The admin token first, else the read-only one.
 */
function localTokenFiles(env: NodeJS.ProcessEnv): string[] {
  const dirs = [env.BLOCKGATE_DATA_DIR, 'data', '/var/lib/blockgate'].filter((d): d is string => d !== undefined && d !== '');
  return ROLES.flatMap((role) => dirs.map((d) => join(d, TOKEN_DIR, tokenFileName(role))));
}

/**
 * The members to ask: `--member` (repeated, or a list) and `--members-file`, else
 * $BLOCKGATE_MEMBER (a list) and $BLOCKGATE_MEMBERS_FILE, else the local default. A list
 * is separated by commas or white space; a members file holds one or more per line, `#`
 * starts a comment. The same member twice is asked once.
 */
export function memberAddressesFrom(values: MemberOptionValues, env: NodeJS.ProcessEnv = process.env): string[] {
  const given = [...(values.member ?? []).flatMap(splitList), ...(values['members-file'] !== undefined ? membersFile(values['members-file'], '--members-file') : [])];
  const fromEnv = [...splitList(env.BLOCKGATE_MEMBER ?? ''), ...(env.BLOCKGATE_MEMBERS_FILE ? membersFile(env.BLOCKGATE_MEMBERS_FILE, 'BLOCKGATE_MEMBERS_FILE') : [])];
  const chosen = values.member !== undefined || values['members-file'] !== undefined ? given : fromEnv.length > 0 ? fromEnv : [DEFAULT_MEMBER];
  if (chosen.length === 0) throw new UsageError(values['members-file'] !== undefined ? `--members-file ${values['members-file']}: names no member` : '--member: empty');
  return [...new Set(chosen)];
}

function splitList(text: string): string[] {
  return text.split(/[\s,]+/).filter((m) => m !== '');
}

function membersFile(path: string, from: string): string[] {
  return readFile(path, from)
    .toString('utf8')
    .split('\n')
    .flatMap((line) => splitList(line.replace(/#.*/, '')));
}

/** --timeout SECONDS: the time limit of each request to a member. */
function timeoutFrom(values: MemberOptionValues): number | undefined {
  if (values.timeout === undefined) return undefined;
  const seconds = Number(values.timeout);
  if (!/^\d+(\.\d+)?$/.test(values.timeout) || !(seconds > 0) || seconds > 3600) throw new UsageError(`--timeout ${values.timeout}: a number of seconds, more than 0 and at most 3600`);
  return Math.round(seconds * 1000);
}

/** Every member given (memberAddressesFrom), as one pool. */
export function memberPoolFrom(values: MemberOptionValues, env: NodeJS.ProcessEnv = process.env): MemberPool {
  const timeoutMs = timeoutFrom(values);
  const addresses = memberAddressesFrom(values, env).map((m) => {
    try {
      return parseMemberAddress(m);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  });
  const given = tokenFrom(values, env);
  const cacert = values.cacert ?? env.BLOCKGATE_CACERT;
  const ca = cacert === undefined ? undefined : readFile(cacert, values.cacert !== undefined ? '--cacert' : 'BLOCKGATE_CACERT');
  return new MemberPool(
    addresses.map((member) => {
      // A token found on this host goes only to a member on this host: never sent elsewhere.
      const token = given ?? (isLocal(member) ? localToken(env) : undefined);
      return new ApiClient({ member, ...(token !== undefined && { token }), ...(ca && { ca }), ...(timeoutMs !== undefined && { timeoutMs }) });
    }),
  );
}

/** The first member given: for commands that follow one job on one member (image). */
export function apiClientFrom(values: MemberOptionValues, env: NodeJS.ProcessEnv = process.env): ApiClient {
  return memberPoolFrom(values, env).clients[0]!;
}

function isLocal(member: MemberAddress): boolean {
  if (!('url' in member)) return true;
  const host = member.url.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

function localToken(env: NodeJS.ProcessEnv): string | undefined {
  for (const path of localTokenFiles(env)) {
    try {
      const token = readFileSync(path, 'utf8').trim();
      if (token !== '') return token;
    } catch {
      // not there, or not ours to read: try the next
    }
  }
  return undefined;
}

/** --token, --token-file, $BLOCKGATE_TOKEN, $BLOCKGATE_TOKEN_FILE: the first one given. */
function tokenFrom(values: MemberOptionValues, env: NodeJS.ProcessEnv): string | undefined {
  if (values.token !== undefined) return nonEmpty(values.token, '--token');
  if (values['token-file'] !== undefined) return nonEmpty(readFile(values['token-file'], '--token-file').toString('utf8').trim(), `--token-file ${values['token-file']}`);
  if (env.BLOCKGATE_TOKEN) return env.BLOCKGATE_TOKEN.trim();
  if (env.BLOCKGATE_TOKEN_FILE) return nonEmpty(readFile(env.BLOCKGATE_TOKEN_FILE, 'BLOCKGATE_TOKEN_FILE').toString('utf8').trim(), `BLOCKGATE_TOKEN_FILE ${env.BLOCKGATE_TOKEN_FILE}`);
  return undefined;
}

function readFile(path: string, from: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`${from} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function nonEmpty(token: string, from: string): string {
  if (token.trim() === '') throw new UsageError(`${from}: the token is empty`);
  return token.trim();
}
