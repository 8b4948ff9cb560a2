/**
 * Talking to a member's management API from tests: its address and tokens as the member
 * logs them (the `API token …` lines name the files), and requests that carry a token.
 */
import { readFile } from 'node:fs/promises';
import { readEvents } from '../../gateway/api/dashboard/connection.js';
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
  request(
    path: string,
    init?: { method?: string; body?: unknown; headers?: Record<string, string>; token?: string | null; signal?: AbortSignal },
  ): Promise<Response>;
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
    return fetch(`${base}${path}`, { method: init.method ?? 'GET', headers, ...(body !== undefined && { body }), ...(init.signal && { signal: init.signal }) });
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

export interface LiveEvent {
  readonly event: string;
  readonly data: unknown;
}

/** A Server-Sent Events stream read with fetch (as the dashboard reads it): events as they come. */
export class LiveEvents {
  private readonly queue: LiveEvent[] = [];
  private waiter: (() => void) | undefined;
  private ended = false;
  private readonly controller = new AbortController();

  static async open(api: ApiHandle, path = '/api/v1/live'): Promise<LiveEvents> {
    const live = new LiveEvents();
    const res = await api.request(path, { headers: { accept: 'text/event-stream' }, signal: live.controller.signal });
    if (res.status !== 200) throw new Error(`live stream: HTTP ${res.status} ${await res.text()}`);
    void live.pump(res);
    return live;
  }

  private async pump(res: Response): Promise<void> {
    try {
      // The dashboard's own reader: the browser test proves it in a browser, this one in Node.
      await readEvents(res.body!, (event, data) => {
        this.queue.push({ event, data });
        this.waiter?.();
      });
    } catch {
      // aborted or cut: the stream has ended
    }
    this.ended = true;
    this.waiter?.();
  }

  /** The next event named `event` that satisfies `match`; earlier events are consumed. */
  async next(event: string, match: (data: never) => boolean = () => true, timeoutMs = 30_000): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.queue.length > 0) {
        const e = this.queue.shift()!;
        if (e.event === event && match(e.data as never)) return e.data;
      }
      if (this.ended) throw new Error(`live stream ended before a matching "${event}" event`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching "${event}" event within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  get isEnded(): boolean {
    return this.ended;
  }

  close(): void {
    this.controller.abort();
  }
}
