import net from 'node:net';
import type { BlockDevice } from '../../fabric/device.js';
import { unlink } from 'node:fs/promises';
import { readBufferPool, type BufferPool } from '../../fabric/buffers.js';
import { logger, type Logger } from '../../fabric/log.js';
import { ownReadBuffersSupported } from '../../fabric/own-read-buffers.js';
import type { ReceivePath } from '../../fabric/socket-receiver.js';
import type { FabricSwitch } from '../../fabric/switch.js';
import { socketEnd, type FrontEndSession } from '../sessions.js';
import { NbdConnection, type ConnectionContext } from './connection.js';
import { ConnectionLimiter, type ConnectionLimits } from '../access/connection-limits.js';
import { Refusals } from '../access/refusals.js';
import type { NbdAccess } from './access.js';
import type { NbdTls } from './tls.js';
import { processFences, type FenceRegistry } from './fencing.js';

export type NbdListenAddress = { host: string; port: number } | { socketPath: string };

export interface NbdServerOptions {
  readonly fabric: FabricSwitch;
  readonly listen: readonly NbdListenAddress[];
  /** Port id for the switch's counters and for logs; default 'nbd'. */
  readonly id?: string;
  /** Export served for the empty name ""; default: the first export. */
  readonly defaultExport?: string;
  readonly pool?: BufferPool;
  /**
   * Where established connections read: pooled receive arenas (default, when this Node
   * allows it) or plain 'data' events (the fallback, forced by tests).
   */
  readonly receive?: ReceivePath;
  /** STARTTLS with these credentials; none: TLS is refused (NBD_REP_ERR_POLICY). */
  readonly tls?: NbdTls;
  /** Per-export access lists and TLS requirements; none: every export to every client. */
  readonly access?: NbdAccess;
  /** Wraps each connection's view of its export (the member enforces SCSI reservations with it). */
  readonly guard?: (device: BlockDevice) => BlockDevice;
  /** A client that has not finished negotiating after this long is dropped; default 10 s (as qemu-nbd), 0 never. */
  readonly handshakeTimeoutMs?: number;
  /** Connections per listener and per client address. */
  readonly connectionLimits?: ConnectionLimits;
  /** Where refused clients are counted; the member shares one with its other front ends and metrics. */
  readonly refusals?: Refusals;
  /** Newest fencing token per export; default: the one every NBD server of this process shares. */
  readonly fences?: FenceRegistry;
}

const DEFAULT_DRAIN_MS = 5000;
/** qemu-nbd drops a client that has not finished the handshake within 10 s. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** The NBD front end: TCP and Unix listeners, one NbdConnection per client. */
export class NbdServer {
  private readonly servers: net.Server[] = [];
  private readonly bound: NbdListenAddress[] = [];
  /** Each listener's address as configured (port 0 included), to tell which ones a new configuration keeps. */
  private readonly keys: string[] = [];
  /** Each live connection with what the session list shows of it. */
  private readonly connections = new Map<NbdConnection, { id: number; client: string; portal: string; since: Date }>();
  /** Replaced, never changed, by a live configuration change: connections keep the one they started with. */
  private ctx: ConnectionContext;
  private readonly log: Logger;
  private readonly limiter: ConnectionLimiter;
  readonly refusals: Refusals;
  private stopping = false;
  private stopped: Promise<void> | null = null;
  private nextConnection = 1;

  constructor(private readonly options: NbdServerOptions) {
    const id = options.id ?? 'nbd';
    this.log = logger('nbd', { port: id });
    this.limiter = new ConnectionLimiter(options.connectionLimits);
    this.refusals = options.refusals ?? new Refusals();
    this.ctx = {
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      refusals: this.refusals,
      fences: options.fences ?? processFences,
      fabric: options.fabric,
      defaultExport: options.defaultExport,
      stopping: () => this.stopping,
      log: this.log,
      portId: id,
      pool: options.pool ?? readBufferPool,
      receive: options.receive ?? 'arenas',
      ...(options.guard && { guard: options.guard }),
      ...(options.tls && { tls: options.tls }),
      ...(options.access && { access: options.access }),
    };
  }

  async start(): Promise<void> {
    const receive = this.ctx.receive === 'arenas' && ownReadBuffersSupported() ? 'arenas' : 'data-events';
    if (receive === this.ctx.receive) this.log.info({ receive }, 'NBD receive path');
    else this.log.warn({ receive, wanted: this.ctx.receive }, "NBD receive path: this Node lacks the socket internals for receive arenas, reading 'data' events");
    try {
      for (const address of this.options.listen) await this.listenOn(address);
    } catch (err) {
      // All or nothing: a port that failed to bind must not leave the others open.
      await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      this.servers.length = 0;
      this.bound.length = 0;
      this.keys.length = 0;
      throw err;
    }
  }

  private async listenOn(address: NbdListenAddress): Promise<void> {
    const unixPath = 'socketPath' in address ? address.socketPath : undefined;
    const listenerId = 'socketPath' in address ? `unix:${address.socketPath}` : `${address.host}:${address.port}/${this.servers.length}`;
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.accept(socket, unixPath, listenerId));
    server.on('error', (err) => this.log.error({ err }, 'listener error'));
    if ('socketPath' in address) {
      // A leftover socket file from a previous run would make listen fail.
      await unlink(address.socketPath).catch(() => undefined);
      await listen(server, { path: address.socketPath });
      this.bound.push({ socketPath: address.socketPath });
    } else {
      await listen(server, { host: address.host, port: address.port });
      const info = server.address() as net.AddressInfo;
      this.bound.push({ host: info.address, port: info.port });
    }
    this.servers.push(server);
    this.keys.push(listenKey(address));
    this.log.info({ address: this.bound[this.bound.length - 1] }, 'NBD listener started');
  }

  /**
   * Listen where a new configuration says without dropping anyone: listeners no longer
   * listed close (the connections they accepted go on), new ones open.
   */
  async relisten(listen: readonly NbdListenAddress[]): Promise<void> {
    const wanted = new Map(listen.map((a) => [listenKey(a), a]));
    for (let i = this.keys.length - 1; i >= 0; i--) {
      if (wanted.has(this.keys[i]!)) continue;
      const [server] = this.servers.splice(i, 1);
      const [address] = this.bound.splice(i, 1);
      this.keys.splice(i, 1);
      await new Promise<void>((resolve) => server!.close(() => resolve()));
      this.log.info({ address }, 'NBD listener closed');
    }
    for (const [key, address] of wanted) if (!this.keys.includes(key)) await this.listenOn(address);
  }

  /**
   * A new configuration's exports, for clients that connect from now on: the export a client
   * asking for the empty name gets, and the per-export access lists.
   */
  reconfigure(next: { readonly defaultExport: string | undefined; readonly access: NbdAccess | undefined }): void {
    const { access: _old, ...rest } = this.ctx;
    this.ctx = { ...rest, defaultExport: next.defaultExport, ...(next.access && { access: next.access }) };
  }

  /**
   * Disconnect the clients of these exports (removed or rebuilt by a configuration change)
   * cleanly: requests in flight are answered, then the connection closes; after `drainMs`
   * it is cut.
   */
  async release(exports: ReadonlySet<string>, drainMs: number): Promise<void> {
    const leaving = [...this.connections.keys()].filter((c) => c.exportName !== undefined && exports.has(c.exportName));
    if (leaving.length > 0) this.log.info({ exports: [...exports], connections: leaving.length }, 'disconnecting the clients of changed exports');
    await Promise.all(leaving.map((c) => c.shutdown(drainMs)));
  }

  addresses(): NbdListenAddress[] {
    return this.bound.map((a) => ({ ...a }));
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Every connected client: one NBD connection is one session. */
  sessionList(): FrontEndSession[] {
    return [...this.connections].map(([conn, c]) => ({
      protocol: 'nbd',
      id: `nbd/${c.id}`,
      kind: 'normal',
      state: conn.exportName === undefined ? 'negotiating' : 'serving',
      exports: conn.exportName === undefined ? [] : [conn.exportName],
      connections: [{ client: c.client, portal: c.portal }],
      since: c.since.toISOString(),
    }));
  }

  /** Stop accepting, let in-flight requests finish and their replies flush, then close. */
  stop(options: { drainMs?: number } = {}): Promise<void> {
    this.stopped ??= this.shutdown(options.drainMs ?? DEFAULT_DRAIN_MS);
    return this.stopped;
  }

  private async shutdown(drainMs: number): Promise<void> {
    this.stopping = true;
    const closing = this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    await Promise.all([...this.connections.keys()].map((c) => c.shutdown(drainMs)));
    await Promise.all(closing);
    this.log.info('NBD server stopped');
  }

  private accept(socket: net.Socket, unixPath: string | undefined, listenerId: string): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const place = this.limiter.admit(listenerId, socket);
    if ('refused' in place) {
      this.refusals.refuse('nbd', place.refused, this.log, { listener: listenerId, peer: socket.remoteAddress });
      socket.destroy();
      return;
    }
    socket.once('close', place.release);
    socket.setNoDelay(true);
    const remote = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'unix';
    const id = this.nextConnection++;
    const conn = new NbdConnection(socket, this.ctx, this.log.child({ conn: id, remote }));
    this.connections.set(conn, {
      id,
      client: socketEnd(socket.remoteAddress, socket.remotePort),
      portal: socketEnd(socket.localAddress, socket.localPort, unixPath),
      since: new Date(),
    });
    void conn.closed.then(() => this.connections.delete(conn));
    conn.start();
  }
}

function listenKey(a: NbdListenAddress): string {
  return 'socketPath' in a ? `unix:${a.socketPath}` : `${a.host}:${a.port}`;
}

function listen(server: net.Server, options: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(options, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
