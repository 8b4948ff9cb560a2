import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo, ListenOptions } from 'node:net';
import { isBlockError, type BlockErrorCode } from '../../fabric/errors.js';
import { logger } from '../../fabric/log.js';
import { InvalidArgument, Refused } from '../../failover/action.js';
import type { ListenAddress } from '../../failover/config/schema/listen.js';
import type { ConfigControl } from '../../member/config-control.js';
import { actionNames, deviceAction } from './actions.js';
import { loadAssets, type Asset } from './assets.js';
import { MAX_CONFIG_BODY, routeConfig } from './config.js';
import { DASHBOARD_CSP, DASHBOARD_HTML } from './dashboard.js';
import { JobError } from '../image/errors.js';
import { ImageJobs } from '../image/jobs.js';
import { HTTP_STATUS_OF_JOB_ERROR, routeJobs } from './jobs.js';
import { EXPOSITION_CONTENT_TYPE } from './exposition.js';
import { admit } from './guard.js';
import type { Forwarder } from './forward.js';
import { SECURITY_HEADERS } from './headers.js';
import { HttpError } from './http-error.js';
import { renderMetrics } from './metrics.js';
import type { Refusals } from '../access/refusals.js';
import { memberStatus, type StatusSource } from './status.js';
import type { FrontEndSession } from '../sessions.js';
import { exportViews, type ExportView, type LunMapping } from './exports.js';
import { LiveStream } from './live-stream.js';
import { RateSampler } from './sampler.js';
import { rotateToken } from './token-rotate.js';
import { routeCluster, type ClusterApi } from './cluster.js';
import { ApiTokens } from './tokens.js';

/**
 * The management HTTP API: Prometheus metrics, the member's status as JSON, operator
 * actions on failover devices, and a dashboard page. Plain node:http, one handler.
 *
 *   GET  /metrics                                   Prometheus text format 0.0.4
 *   GET  /api/v1/status                             member, exports, devices, ports, listeners
 *   POST /api/v1/devices/NAME/actions/ACTION        the actions of the device's failover set
 *   GET  /api/v1/exports                            exports with size, NBD listeners and iSCSI LUNs
 *   GET  /api/v1/sessions                           connected NBD clients and iSCSI sessions
 *   GET  /api/v1/live                               Server-Sent Events: rates every second, state (live-stream.ts)
 *   GET  /api/v1/whoami                             the caller's role
 *   POST /api/v1/tokens/rotate                      replace the admin or read-only token
 *   GET|POST /api/v1/jobs, GET|DELETE /api/v1/jobs/ID   image import/export jobs (see jobs.ts)
 *   GET  /api/v1/config, POST /api/v1/config/diff|apply|rollback   live configuration (see config.ts)
 *   GET  /, /assets/NAME                            dashboard page and its files (no token)
 *
 * Every request passes guard.ts first (origin, bearer token, role, content type). On a
 * cluster member a change that belongs to a failover set's Primary is then forwarded there
 * (forward.ts) unless this member is that Primary.
 */
export interface ApiServerOptions extends StatusSource {
  readonly listen: readonly ListenAddress[];
  /** The member's data directory: the API tokens live in DATA/api/. */
  readonly dataDir: string;
  /** Serve HTTPS with this PEM certificate (chain) and key instead of HTTP. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** /metrics answers without a token (Prometheus on the management network); default true. */
  readonly openMetrics?: boolean;
  /** The clients connected to the member's front ends now. */
  sessions?(): FrontEndSession[];
  /** The iSCSI targets' LUNs and the exports behind them. */
  luns?(): LunMapping[];
  /** Clients the front ends turned away, for /metrics. */
  readonly refusals?: Refusals;
  /** The member's live configuration (show, diff, apply, roll back), once it runs. */
  configControl?(): ConfigControl | undefined;
  /** The member's cluster (a member without one answers 404/409 on the cluster resources). */
  readonly cluster?: ClusterApi;
  /** A cluster member: changes that belong to a set's Primary are forwarded there (forward.ts). */
  readonly forwarder?: Forwarder;
}

/** The dashboard's scripts and styles (assets.ts): public, like the page. */
const ASSETS = '/assets/';

/** An action's body is a small JSON object; anything bigger is a mistake. */
const MAX_BODY = 64 * 1024;
const ACTION_PATH = /^\/api\/v1\/devices\/([^/]+)\/actions\/([^/]+)$/;

/** How a device's refusal maps to HTTP: the operator asked for something the state forbids. */
const STATUS_OF_CODE: Partial<Record<BlockErrorCode, number>> = { EINVAL: 400, EPERM: 409, EIO: 503, ETIMEDOUT: 503, ESHUTDOWN: 503 };

export class ApiServer {
  private readonly servers: Server[] = [];
  private readonly bound: Array<{ host: string; port: number } | { socketPath: string }> = [];
  private readonly log = logger('api');
  private tokens: ApiTokens | undefined;
  private readonly sampler: RateSampler;
  private readonly live: LiveStream;
  private tlsOptions: { cert: Buffer; key: Buffer } | undefined;
  private readonly jobs: ImageJobs;
  private assets: ReadonlyMap<string, Asset> = new Map();

  constructor(private readonly options: ApiServerOptions) {
    this.sampler = new RateSampler(options.fabric);
    this.live = new LiveStream({ sampler: this.sampler, state: () => this.liveState() });
    this.jobs = new ImageJobs(options.fabric);
  }

  async start(): Promise<void> {
    this.tokens = await ApiTokens.open(this.options.dataDir);
    this.assets = await loadAssets();
    if (this.options.tls) {
      const { cert, key } = this.options.tls;
      this.tlsOptions = { cert: await readFile(cert), key: await readFile(key) };
    }
    try {
      for (const address of this.options.listen) await this.listenOn(address);
    } catch (err) {
      await this.closeAll();
      throw err;
    }
    this.sampler.start();
  }

  addresses(): Array<{ host: string; port: number } | { socketPath: string }> {
    return this.bound.map((a) => ({ ...a }));
  }

  /** Requests are short: give open ones `drainMs`, then drop every connection. */
  async stop(options: { drainMs: number }): Promise<void> {
    this.live.closeAll();
    this.sampler.stop();
    await this.jobs.close();
    const closed = this.closeAll();
    for (const s of this.servers) s.closeIdleConnections();
    const timer = setTimeout(() => this.servers.forEach((s) => s.closeAllConnections()), options.drainMs);
    await closed;
    clearTimeout(timer);
  }

  private closeAll(): Promise<void> {
    const servers = this.servers.splice(0);
    this.bound.length = 0;
    return Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))).then(() => undefined);
  }

  private async listenOn(address: ListenAddress): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => this.handle(req, res);
    const server: Server = this.tlsOptions ? createTlsServer(this.tlsOptions, handler) : createServer(handler);
    server.on('clientError', (err, socket) => {
      this.log.debug({ err }, 'bad HTTP request');
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    const options: ListenOptions = 'socket' in address ? { path: address.socket } : { host: address.host, port: address.port };
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error({ err }, 'API listener error'));
    this.servers.push(server);
    if ('socket' in address) this.bound.push({ socketPath: address.socket });
    else {
      const info = server.address() as AddressInfo;
      this.bound.push({ host: info.address, port: info.port });
    }
    this.log.info({ address: this.bound[this.bound.length - 1], tls: this.tlsOptions !== undefined }, 'API listener started');
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    req.on('error', (err) => this.log.debug({ err }, 'API request stream error'));
    res.on('error', (err) => this.log.debug({ err }, 'API response stream error'));
    this.route(req, res).catch((err: unknown) => this.fail(res, err));
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const method = req.method ?? 'GET';
    const forwarder = this.options.forwarder;
    const caller = admit(req, { tokens: this.tokens!, scheme: this.tlsOptions ? 'https' : 'http', ...(forwarder && { seals: forwarder.seals }) }, this.isPublic(path));
    // Read once: a change forwarded to the Primary, or handled here after all, needs it again.
    let body: Promise<unknown> | undefined;
    const readBody = (limit = MAX_BODY): Promise<unknown> => (body ??= readJson(req, limit));
    const owner = caller === 'public' ? undefined : forwarder?.ownerOf(method, path);
    if (owner !== undefined && caller !== 'public') {
      const forwarded = await forwarder!.forward(req, owner, await readBody(MAX_CONFIG_BODY), caller);
      if (forwarded !== 'local') {
        sendJson(res, forwarded.status, forwarded.body, forwarded.headers);
        return;
      }
    }
    // The cluster's resources first: on a cluster member PUT /api/v1/config is the cluster's change.
    const clustered = await routeCluster(this.options.cluster, method, path, (limit) => readBody(limit));
    if (clustered) {
      if (method !== 'GET' && method !== 'HEAD') this.log.info({ path, method, status: clustered.status }, 'operator request');
      sendJson(res, clustered.status, clustered.body, clustered.headers);
      return;
    }
    const reply = (await routeJobs(this.jobs, method, path, () => readBody())) ?? (await routeConfig(this.options.configControl?.(), method, path, (limit) => readBody(limit)));
    if (reply) {
      if (path.startsWith('/api/v1/config/') && method === 'POST') this.log.info({ path, status: reply.status }, 'configuration request');
      sendJson(res, reply.status, reply.body, reply.headers);
      return;
    }
    const action = ACTION_PATH.exec(path);
    if (action) {
      allow(method, 'POST');
      const [name, act] = [decode(action[1]!), decode(action[2]!)];
      const device = this.options.fabric.device(name);
      if (!device) throw new HttpError(404, `no device named ${JSON.stringify(name)}`);
      const body = await readBody();
      if (actionNames(this.options.sets, name).includes(act)) this.log.info({ device: name, action: act, body }, 'operator action');
      const result = await deviceAction(this.options.sets, name, act, body);
      sendJson(res, 200, { device: name, action: act, ok: true, ...result, status: device.status(), set: this.options.sets.get(name)?.state() });
      return;
    }
    switch (path) {
      case '/metrics':
        allow(method, 'GET');
        send(res, 200, EXPOSITION_CONTENT_TYPE, renderMetrics(this.options.fabric, this.options.sets, this.options.refusals));
        return;
      case '/api/v1/status':
        allow(method, 'GET');
        sendJson(res, 200, memberStatus(this.options));
        return;
      case '/api/v1/exports':
        allow(method, 'GET');
        sendJson(res, 200, { member: this.options.member, exports: this.exportList() });
        return;
      case '/api/v1/sessions':
        allow(method, 'GET');
        sendJson(res, 200, { member: this.options.member, sessions: this.options.sessions?.() ?? [] });
        return;
      case '/api/v1/live':
        allow(method, 'GET');
        this.live.open(req, res);
        return;
      case '/api/v1/whoami':
        allow(method, 'GET');
        sendJson(res, 200, { member: this.options.member, role: caller });
        return;
      case '/api/v1/tokens/rotate':
        allow(method, 'POST');
        sendJson(res, 200, await rotateToken(this.tokens!, await readBody()));
        return;
      case '/':
        allow(method, 'GET');
        send(res, 200, 'text/html; charset=utf-8', DASHBOARD_HTML, { 'content-security-policy': DASHBOARD_CSP });
        return;
      default: {
        const asset = path.startsWith(ASSETS) ? this.assets.get(path.slice(ASSETS.length)) : undefined;
        if (asset) {
          allow(method, 'GET');
          send(res, 200, asset.type, asset.body);
          return;
        }
        throw new HttpError(404, `no such endpoint: ${method} ${path}`);
      }
    }
  }

  /** Everything the dashboard draws besides the rates: one snapshot, one source of truth. */
  private liveState(): Record<string, unknown> {
    return { status: memberStatus(this.options), exports: this.exportList(), sessions: this.options.sessions?.() ?? [], jobs: this.jobs.list() };
  }

  private exportList(): ExportView[] {
    return exportViews(this.options.fabric, this.options.addresses().nbd ?? [], this.options.luns?.() ?? []);
  }

  /** What answers without a token: the dashboard's page (it holds no data) and, if left open, /metrics. */
  private isPublic(path: string): boolean {
    return path === '/' || path.startsWith(ASSETS) || (path === '/metrics' && this.options.openMetrics !== false);
  }

  private fail(res: ServerResponse, err: unknown): void {
    let status = 500;
    let code: string | undefined;
    if (err instanceof HttpError) status = err.status;
    else if (err instanceof JobError) status = HTTP_STATUS_OF_JOB_ERROR[err.reason];
    else if (err instanceof InvalidArgument) status = 400;
    else if (err instanceof Refused) status = 409;
    else if (isBlockError(err)) {
      status = STATUS_OF_CODE[err.code] ?? 500;
      code = err.code;
    }
    if (status === 500) this.log.warn({ err }, 'API request failed');
    const message = err instanceof Error ? err.message : String(err);
    if (res.headersSent) res.destroy();
    else sendJson(res, status, { error: message, ...(code && { code }) }, err instanceof HttpError ? err.headers : {});
  }
}

function allow(method: string, expected: 'GET' | 'POST'): void {
  if (method !== expected && !(expected === 'GET' && method === 'HEAD')) throw new HttpError(405, `use ${expected}`);
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, `malformed path segment ${JSON.stringify(segment)}`);
  }
}

/** The body as JSON; an empty body is `{}` (actions without arguments need none). */
async function readJson(req: IncomingMessage, limit = MAX_BODY): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, `request body larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HttpError(400, `request body is not valid JSON: ${(err as Error).message}`);
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: string | Buffer, headers: Readonly<Record<string, string>> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, ...headers, 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers?: Readonly<Record<string, string>>): void {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(value, null, 2)}\n`, headers);
}
