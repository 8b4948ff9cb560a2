/**
 * Talking to a member's management API from tests: its address and tokens as the member
 * logs them (the `API token …` lines name the files), and requests that carry a token.
 */
import { readFile } from 'node:fs/promises';
import type { MemberProcess } from './blockgate-cli.js';

export type Role = 'admin' | 'read';

/** The file holding a role's token, from the member's log line (the token itself is never logged). */
export async function tokenFile(member: MemberProcess, role: Role = 'admin'): Promise<string> {
  const line = await member.waitFor((l) => l.component === 'api-auth' && l.role === role && typeof l.path === 'string');
  return line.path as string;
}

export async function readToken(path: string): Promise<string> {
  return (await readFile(path, 'utf8')).trim();
}

export interface ApiHandle {
  readonly base: string;
  readonly token: string;
  /** fetch with the token; a body object is sent as JSON. */
  request(path: string, init?: { method?: string; body?: unknown; headers?: Record<string, string>; token?: string | null }): Promise<Response>;
  json<T = Record<string, unknown>>(path: string, init?: { method?: string; body?: unknown }): Promise<{ status: number; body: T }>;
}

export async function memberApi(member: MemberProcess, role: Role = 'admin'): Promise<ApiHandle> {
  const listen = await member.ready();
  const token = await readToken(await tokenFile(member, role));
  return apiAt(`http://${listen.api![0]}`, token);
}

export function apiAt(base: string, token: string): ApiHandle {
  const request: ApiHandle['request'] = (path, init = {}) => {
    const headers: Record<string, string> = { ...init.headers };
    const bearer = init.token === undefined ? token : init.token;
    if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
    let body: string | undefined;
    if (init.body !== undefined) {
      body = typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
      headers['content-type'] ??= 'application/json';
    } else if (init.method !== undefined && init.method !== 'GET') headers['content-type'] ??= 'application/json';
    return fetch(`${base}${path}`, { method: init.method ?? 'GET', headers, ...(body !== undefined && { body }) });
  };
  return {
    base,
    token,
    request,
    async json(path, init) {
      const res = await request(path, init);
      return { status: res.status, body: (await res.json()) as never };
    },
  };
}
