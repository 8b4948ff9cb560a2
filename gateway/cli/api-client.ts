import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';

/**
 * The HTTP client of the commands that talk to a running member's management API. One
 * member per client (member-pool.ts spreads requests over several); a member is `http://HOST:PORT`, `https://HOST:PORT`, `HOST:PORT`
 * (http) or `unix:/PATH` (an API listener on a Unix socket). A bearer token, when given, goes
 * with every request. node:http rather than fetch: it reaches Unix sockets without extra
 * dependencies.
 */

export const DEFAULT_MEMBER = 'http://127.0.0.1:9810';
/**
 * A member that takes longer than this to answer one request is reported as not answering:
 * a read is then asked of the next member; a change (which may take a while to apply) waits longer.
 */
export const DEFAULT_READ_TIMEOUT_MS = 10_000;
export const DEFAULT_CHANGE_TIMEOUT_MS = 30_000;
/**
 * A connection not made within this is given up (a host that is down drops the SYN: the
 * kernel would retry for minutes). No byte was sent then, so even a change moves on.
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 3_000;
/** API answers are small JSON documents; anything past this is a wrong endpoint. */
const MAX_RESPONSE = 16 * 1024 * 1024;

export type MemberAddress = { readonly url: URL } | { readonly socketPath: string };

/** The member could not be reached or did not answer: nothing was done there as far as we know. */
export class MemberUnreachableError extends Error {
  override readonly name = 'MemberUnreachableError';
  constructor(
    message: string,
    /** No connection was made, so the request surely did not arrive: safe to send elsewhere. */
    readonly notSent = false,
    /** Asked of several members: why each one failed, in the order asked. */
    readonly failures: ReadonlyArray<{ readonly member: string; readonly error: string }> = [],
  ) {
    super(message);
  }
}

/** The member answered with an error status; `message` is its `error` field. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly body: unknown,
    readonly headers: IncomingMessage['headers'] = {},
  ) {
    super(message);
  }
}

export interface ApiResponse<T> {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: T;
}

export function parseMemberAddress(value: string): MemberAddress {
  if (value.startsWith('unix:')) return { socketPath: value.slice('unix:'.length) };
  if (value.startsWith('/')) return { socketPath: value };
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new TypeError(`member ${JSON.stringify(value)}: expected http://HOST:PORT, https://HOST:PORT, HOST:PORT or unix:/PATH`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`member ${JSON.stringify(value)}: only http and https`);
  return { url };
}

export function formatMemberAddress(a: MemberAddress): string {
  return 'url' in a ? a.url.origin : `unix:${a.socketPath}`;
}

export interface ApiClientOptions {
  readonly member: MemberAddress;
  readonly token?: string;
  /** The time limit of one request (default: DEFAULT_READ_TIMEOUT_MS for GET, else DEFAULT_CHANGE_TIMEOUT_MS). */
  readonly timeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** Certificates to trust for an https member (PEM), instead of the system's. */
  readonly ca?: Buffer;
  /** Sent with every request besides the client's own (a member forwarding a change names itself). */
  readonly headers?: Readonly<Record<string, string>>;
}

export class ApiClient {
  constructor(private readonly options: ApiClientOptions) {}

  get member(): string {
    return formatMemberAddress(this.options.member);
  }

  get<T>(path: string): Promise<ApiResponse<T>> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body: unknown): Promise<ApiResponse<T>> {
    return this.request<T>('POST', path, body);
  }

  delete<T>(path: string): Promise<ApiResponse<T>> {
    return this.request<T>('DELETE', path);
  }

  /** One request; resolves for 2xx with the parsed JSON body, rejects with ApiError otherwise. */
  request<T>(method: string, path: string, body?: unknown): Promise<ApiResponse<T>> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = { ...this.options.headers, accept: 'application/json' };
    // Every state-changing request says JSON, body or not: the API refuses any other (no form
    // or no-CORS page can send that type, so none can forge one).
    if (method !== 'GET' && method !== 'HEAD') Object.assign(headers, { 'content-type': 'application/json', 'content-length': payload?.length ?? 0 });
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    const target = this.options.member;
    const timeout = this.options.timeoutMs ?? (method === 'GET' || method === 'HEAD' ? DEFAULT_READ_TIMEOUT_MS : DEFAULT_CHANGE_TIMEOUT_MS);
    const base: RequestOptions = { method, headers, timeout, ...(this.options.ca && { ca: this.options.ca }) };
    const send = 'url' in target && target.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const options: RequestOptions =
      'url' in target
        ? { ...base, host: target.url.hostname.replace(/^\[|\]$/g, ''), port: target.url.port || (target.url.protocol === 'https:' ? 443 : 80), path: joinPath(target.url.pathname, path) }
        : { ...base, socketPath: target.socketPath, path };

    return new Promise((resolve, reject) => {
      const req = send(options, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE) req.destroy(new MemberUnreachableError(`${this.member} sent more than ${MAX_RESPONSE} bytes`));
          else chunks.push(chunk);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          let parsed: unknown = undefined;
          try {
            parsed = text === '' ? undefined : JSON.parse(text);
          } catch {
            if (status >= 200 && status < 300) return reject(new MemberUnreachableError(`${this.member}${path}: the answer is not JSON (is this a blockgate API?)`));
          }
          if (status >= 200 && status < 300) return resolve({ status, headers: res.headers, body: parsed as T });
          const message = typeof (parsed as { error?: unknown })?.error === 'string' ? (parsed as { error: string }).error : `HTTP ${status} ${res.statusMessage ?? ''}`.trim();
          reject(new ApiError(status, message, parsed, res.headers));
        });
        res.on('error', (err) => reject(new MemberUnreachableError(`${this.member}: ${err.message}`)));
      });
      // Whether the request can have reached the member: only once its connection is up.
      let connected = false;
      req.on('socket', (socket) => {
        if (!socket.connecting) {
          connected = true;
          return;
        }
        const connectMs = this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
        const timer = setTimeout(() => req.destroy(new MemberUnreachableError(`cannot reach the member at ${this.member}: no connection within ${connectMs} ms`, true)), connectMs);
        socket.once(send === httpsRequest ? 'secureConnect' : 'connect', () => {
          connected = true;
          clearTimeout(timer);
        });
        socket.once('close', () => clearTimeout(timer));
      });
      req.on('timeout', () => req.destroy(new MemberUnreachableError(`${this.member} did not answer within ${options.timeout} ms`, !connected)));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err instanceof MemberUnreachableError) return reject(err);
        reject(new MemberUnreachableError(`cannot reach the member at ${this.member}: ${err.code ?? err.message}`, !connected));
      });
      req.end(payload);
    });
  }
}

/** A member URL may carry a path prefix (behind a reverse proxy): keep it in front of the API path. */
function joinPath(prefix: string, path: string): string {
  return prefix === '/' || prefix === '' ? path : `${prefix.replace(/\/$/, '')}${path}`;
}
