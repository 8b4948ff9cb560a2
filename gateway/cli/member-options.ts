import { readFileSync } from 'node:fs';
import { ApiClient, DEFAULT_MEMBER, parseMemberAddress } from './api-client.js';
import { UsageError } from './exit.js';

/**
 * The options every command that talks to a running member takes, for node:util parseArgs,
 * and the ApiClient they describe. Precedence: option, then environment, then default.
 */
export const MEMBER_PARSE_OPTIONS = {
  member: { type: 'string', short: 'm' },
  token: { type: 'string' },
  'token-file': { type: 'string' },
} as const;

export interface MemberOptionValues {
  readonly member?: string | undefined;
  readonly token?: string | undefined;
  readonly 'token-file'?: string | undefined;
}

export function apiClientFrom(values: MemberOptionValues, env: NodeJS.ProcessEnv = process.env): ApiClient {
  const member = values.member ?? env.BLOCKGATE_MEMBER ?? DEFAULT_MEMBER;
  let address;
  try {
    address = parseMemberAddress(member);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const token = tokenFrom(values, env);
  return new ApiClient({ member: address, ...(token !== undefined && { token }) });
}

/** --token, --token-file, $BLOCKGATE_TOKEN, $BLOCKGATE_TOKEN_FILE: the first one given. */
function tokenFrom(values: MemberOptionValues, env: NodeJS.ProcessEnv): string | undefined {
  if (values.token !== undefined) return nonEmpty(values.token, '--token');
  if (values['token-file'] !== undefined) return readToken(values['token-file'], '--token-file');
  if (env.BLOCKGATE_TOKEN) return env.BLOCKGATE_TOKEN.trim();
  if (env.BLOCKGATE_TOKEN_FILE) return readToken(env.BLOCKGATE_TOKEN_FILE, 'BLOCKGATE_TOKEN_FILE');
  return undefined;
}

function readToken(path: string, from: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`${from} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return nonEmpty(text.trim(), `${from} ${path}`);
}

function nonEmpty(token: string, from: string): string {
  if (token.trim() === '') throw new UsageError(`${from}: the token is empty`);
  return token.trim();
}
