/**
 * The dashboard's link to the member: the API token (kept in sessionStorage, so it lasts
 * as long as the tab and is never sent anywhere but this API), JSON requests, and the live
 * stream read with fetch — EventSource cannot send an Authorization header.
 * URLs are relative, so the page works behind a reverse proxy's path prefix.
 */
const TOKEN_KEY = 'blockgate.apiToken';

export function storedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function storeToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token.trim());
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** The member answered with an error: its status and message. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = storedToken();
  return { ...extra, ...(token && { authorization: `Bearer ${token}` }) };
}

export async function apiRequest<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const method = init.method ?? 'GET';
  const res = await fetch(path, {
    method,
    // Every state change is JSON: the API refuses anything else from a browser.
    headers: headers(method === 'GET' ? {} : { 'content-type': 'application/json' }),
    ...(method !== 'GET' && { body: JSON.stringify(init.body ?? {}) }),
    cache: 'no-store',
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const message = typeof (parsed as { error?: unknown })?.error === 'string' ? (parsed as { error: string }).error : `HTTP ${res.status}`;
    throw new ApiFailure(res.status, message);
  }
  return parsed as T;
}

export interface LiveHandlers {
  onEvent(event: string, data: unknown): void;
  /** Connected, or not (with why); `unauthorized` when the token was refused. */
  onLink(up: boolean, reason?: string, unauthorized?: boolean): void;
}

/** Follow /api/v1/live, reconnecting after a drop; stops for good on a 401. */
export function followLive(handlers: LiveHandlers, retryMs = 2000): { stop(): void } {
  let stopped = false;
  let controller = new AbortController();
  const run = async (): Promise<void> => {
    while (!stopped) {
      controller = new AbortController();
      try {
        const res = await fetch('api/v1/live', { headers: headers({ accept: 'text/event-stream' }), signal: controller.signal, cache: 'no-store' });
        if (res.status === 401 || res.status === 403) {
          handlers.onLink(false, (await res.json().catch(() => ({ error: `HTTP ${res.status}` })) as { error: string }).error, true);
          return;
        }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        handlers.onLink(true);
        await readEvents(res.body, handlers.onEvent);
        if (!stopped) handlers.onLink(false, 'the member closed the stream');
      } catch (err) {
        if (stopped) return;
        handlers.onLink(false, err instanceof Error ? err.message : String(err));
      }
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  };
  void run();
  return {
    stop() {
      stopped = true;
      controller.abort();
    },
  };
}

/** Server-Sent Events framing: `event:` and `data:` lines, a blank line ends an event. */
export async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (event: string, data: unknown) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffered += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      let event = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data += line.slice(5).trimStart();
      }
      if (data !== '') onEvent(event, JSON.parse(data) as unknown);
    }
  }
}
