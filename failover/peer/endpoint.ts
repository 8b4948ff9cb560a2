import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, Socket, type Server } from 'node:net';
import { logger } from '../../fabric/log.js';
import { formatHostPort, unmapped, type HostPort, type Subnet } from '../config/net-address.js';
import type { NetworkConfig } from '../config/schema/cluster.js';
import { frame, FrameError, FrameReader, open, seal } from './frame.js';
import { asPeerMessage, PeerRequestError, type Heartbeat, type PeerMessage, type Request, type Response } from './messages.js';

const log = logger('peer');

/** A request older or newer than this (by the sender's wall clock) is refused as a possible replay. */
const REQUEST_CLOCK_WINDOW_MS = 30_000;
/** A peer that reads nothing while this much waits to be sent is dropped (a dead link fills the buffer). */
const MAX_UNSENT_BYTES = 1 << 20;
/** Reconnecting to a peer that refused or timed out waits at least this long. */
const RECONNECT_GAP_MS = 200;

export interface EndpointOptions {
  readonly network: NetworkConfig;
  readonly subnet: Subnet;
  /** This member's address and port on the network. */
  readonly local: HostPort;
  readonly key: Buffer;
  readonly memberId: string;
  /** How long a TCP connect to a peer may take (a cut link drops SYNs silently). */
  readonly connectTimeoutMs: number;
}

/** Who sent a heartbeat or a request: the source address proves the network. */
export interface Sender {
  readonly address: string;
  readonly port: number;
}

export type RequestHandler = (body: unknown, from: { readonly member: string; readonly address: string }) => Promise<unknown>;

export interface EndpointEvents {
  heartbeat: [Heartbeat, Sender];
}

/** Counters a test or operator can read: what was dropped tells a misconfiguration from an attack. */
export interface EndpointCounters {
  heartbeatsSent: number;
  heartbeatsReceived: number;
  requestsServed: number;
  /** From outside the network's subnet (another network's packet delivered to this socket). */
  foreignSource: number;
  /** Failed authentication, malformed or unknown messages. */
  rejected: number;
}

/**
 * One member's end of one management network: a TCP listener on its address there (requests
 * and, on TCP networks, heartbeats) and, on UDP networks, a UDP socket for heartbeats. Only
 * senders inside the network's subnet are heard, so every message is attributed to the
 * network it really came over.
 */
export class NetworkEndpoint extends EventEmitter<EndpointEvents> {
  readonly counters: EndpointCounters = { heartbeatsSent: 0, heartbeatsReceived: 0, requestsServed: 0, foreignSource: 0, rejected: 0 };
  private server: Server | undefined;
  private udp: UdpSocket | undefined;
  private readonly inbound = new Set<Socket>();
  private readonly outbound = new Map<string, Outbound>();
  private readonly handlers = new Map<string, RequestHandler>();
  private readonly nonces = new Map<string, number>();
  private nextId = 1;
  private stopped = false;

  constructor(readonly options: EndpointOptions) {
    super();
  }

  get network(): string {
    return this.options.network.name;
  }

  handle(op: string, handler: RequestHandler): void {
    this.handlers.set(op, handler);
  }

  async start(): Promise<void> {
    const { local } = this.options;
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: local.host, port: local.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => log.error({ err, network: this.network }, 'management listener error'));
    this.server = server;
    if (this.options.network.heartbeat.protocol === 'udp') {
      const udp = createSocket({ type: this.options.subnet.family === 4 ? 'udp4' : 'udp6' });
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind({ address: local.host, port: local.port, exclusive: true }, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      udp.on('error', (err) => log.warn({ err, network: this.network }, 'heartbeat socket error'));
      udp.on('message', (msg, rinfo) => this.datagram(msg, { address: rinfo.address, port: rinfo.port }));
      this.udp = udp;
    }
    log.info({ network: this.network, address: formatHostPort(local), heartbeat: this.options.network.heartbeat.protocol }, 'management network up');
  }

  /** Heartbeats are sent and forgotten: the next one follows shortly, a lost one is what silence measures. */
  sendHeartbeat(to: HostPort, heartbeat: Heartbeat): void {
    if (this.stopped) return;
    this.counters.heartbeatsSent++;
    if (this.udp) {
      const sealed = seal(heartbeat, this.options.key);
      this.udp.send(sealed, to.port, to.host, (err) => {
        if (err) log.debug({ err, to: formatHostPort(to), network: this.network }, 'heartbeat not sent');
      });
      return;
    }
    this.connection(to).send(heartbeat, true);
  }

  /** Ask the member at `to` to run `op`; rejects on timeout, on a broken connection or with the peer's refusal. */
  request(to: HostPort, op: string, body: unknown, timeoutMs: number): Promise<unknown> {
    if (this.stopped) return Promise.reject(new PeerRequestError('ESHUTDOWN', 'the management network is stopped'));
    const request: Request = { t: 'req', id: this.nextId++, op, from: this.options.memberId, ts: Date.now(), nonce: randomBytes(12).toString('base64url'), body };
    return this.connection(to).call(request, timeoutMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const o of this.outbound.values()) o.close();
    this.outbound.clear();
    for (const s of this.inbound) s.destroy();
    this.inbound.clear();
    const server = this.server;
    this.server = undefined;
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    const udp = this.udp;
    this.udp = undefined;
    await new Promise<void>((resolve) => (udp ? udp.close(() => resolve()) : resolve()));
  }

  private inSubnet(address: string): boolean {
    if (this.options.subnet.contains(unmapped(address))) return true;
    this.counters.foreignSource++;
    return false;
  }

  private datagram(msg: Buffer, from: Sender): void {
    if (!this.inSubnet(from.address)) return;
    let message: PeerMessage | undefined;
    try {
      message = asPeerMessage(open(msg, this.options.key));
    } catch (err) {
      this.reject(err, from);
      return;
    }
    if (message?.t !== 'hb') {
      this.reject(new FrameError(`unexpected ${message ? message.t : 'message'} over UDP`), from);
      return;
    }
    this.heard(message, from);
  }

  private heard(heartbeat: Heartbeat, from: Sender): void {
    if (heartbeat.net !== this.network) {
      // Sent to another network's address but routed here: it proves nothing about this one.
      this.counters.foreignSource++;
      return;
    }
    this.counters.heartbeatsReceived++;
    this.emit('heartbeat', heartbeat, { address: unmapped(from.address), port: from.port });
  }

  private reject(err: unknown, from: Sender): void {
    this.counters.rejected++;
    log.debug({ err, from: from.address, network: this.network }, 'message rejected');
  }

  private accept(socket: Socket): void {
    const from: Sender = { address: unmapped(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 };
    if (this.stopped || !this.inSubnet(from.address)) {
      socket.destroy();
      return;
    }
    this.inbound.add(socket);
    socket.setNoDelay(true);
    onMessages(socket, this.options.key, (message) => {
      if (message?.t === 'hb') this.heard(message, from);
      else if (message?.t === 'req') void this.serve(message, from, socket);
      else this.reject(new FrameError('unexpected message on an inbound connection'), from);
    }, (err) => {
      this.reject(err, from);
      socket.destroy();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.inbound.delete(socket));
  }

  private async serve(request: Request, from: Sender, socket: Socket): Promise<void> {
    let response: Response;
    try {
      this.checkFresh(request);
      const handler = this.handlers.get(request.op);
      if (!handler) throw new PeerRequestError('EUNKNOWNOP', `unknown request ${JSON.stringify(request.op)}`);
      const body = await handler(request.body, { member: request.from, address: from.address });
      this.counters.requestsServed++;
      response = { t: 'res', id: request.id, ok: true, body };
    } catch (err) {
      const code = err instanceof PeerRequestError ? err.code : 'EFAILED';
      response = { t: 'res', id: request.id, ok: false, error: err instanceof Error ? err.message : String(err), code };
    }
    if (!socket.destroyed) socket.write(frame(response, this.options.key));
  }

  /** A request must be recent by the sender's clock and never seen before. */
  private checkFresh(request: Request): void {
    const now = Date.now();
    if (Math.abs(now - request.ts) > REQUEST_CLOCK_WINDOW_MS) {
      throw new PeerRequestError('ESTALE', `request time is ${Math.round((now - request.ts) / 1000)} s off this member's clock (are the clocks synchronized?)`);
    }
    for (const [nonce, until] of this.nonces) if (until < now) this.nonces.delete(nonce);
    if (this.nonces.has(request.nonce)) throw new PeerRequestError('EREPLAY', 'request already seen');
    this.nonces.set(request.nonce, now + 2 * REQUEST_CLOCK_WINDOW_MS);
  }

  private connection(to: HostPort): Outbound {
    const key = formatHostPort(to);
    let o = this.outbound.get(key);
    if (!o) {
      o = new Outbound(to, this.options);
      this.outbound.set(key, o);
    }
    return o;
  }
}

/** Our connection to one peer on one network: heartbeats (TCP networks) and requests go out on it. */
class Outbound {
  private socket: Socket | undefined;
  private connected = false;
  private lastAttempt = 0;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly to: HostPort,
    private readonly options: EndpointOptions,
  ) {}

  send(message: PeerMessage, connectIfNeeded: boolean): void {
    const socket = this.ensure(connectIfNeeded);
    if (!socket || !this.connected) return;
    if (socket.writableLength > MAX_UNSENT_BYTES) {
      socket.destroy(new Error('peer is not reading'));
      return;
    }
    socket.write(frame(message, this.options.key));
  }

  call(request: Request, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(request.id);
        // Unanswered over an established connection: the link may be dead under it; connect afresh next time.
        this.socket?.destroy();
        reject(new PeerRequestError('ETIMEDOUT', `${request.op} to ${formatHostPort(this.to)} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(request.id, { resolve, reject, timer });
      const go = (): void => {
        if (this.connected) this.send(request, true);
      };
      if (this.connected) go();
      else {
        this.waiting.push(go);
        this.ensure(true, true);
      }
    });
  }

  close(): void {
    this.fail(new PeerRequestError('ESHUTDOWN', 'the management network is stopped'));
    this.socket?.destroy();
    this.socket = undefined;
  }

  /** The socket, connecting it first if there is none (at most every RECONNECT_GAP_MS unless `now`). */
  private ensure(connect: boolean, now = false): Socket | undefined {
    if (this.socket || !connect) return this.socket;
    const t = Date.now();
    if (!now && t - this.lastAttempt < RECONNECT_GAP_MS) return undefined;
    this.lastAttempt = t;
    const socket = new Socket();
    this.socket = socket;
    this.connected = false;
    socket.setNoDelay(true);
    socket.setTimeout(this.options.connectTimeoutMs);
    socket.once('timeout', () => socket.destroy(new Error('connect timed out')));
    onMessages(socket, this.options.key, (m) => {
      if (m?.t !== 'res') return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.ok) p.resolve(m.body);
      else p.reject(new PeerRequestError(m.code ?? 'EFAILED', m.error ?? 'refused'));
    }, (err) => socket.destroy(err));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.socket === socket) {
        this.socket = undefined;
        this.connected = false;
      }
      this.fail(new PeerRequestError('ECONNRESET', `connection to ${formatHostPort(this.to)} closed`));
    });
    socket.connect({ host: this.to.host, port: this.to.port, localAddress: this.options.local.host }, () => {
      socket.setTimeout(0);
      this.connected = true;
      for (const go of this.waiting.splice(0)) go();
    });
    return socket;
  }

  private fail(err: Error): void {
    this.waiting.length = 0;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.pending.delete(id);
    }
  }
}

/** Each sealed message a TCP connection carries, in order; a frame that fails its check ends the stream. */
function onMessages(socket: Socket, key: Buffer, onMessage: (message: PeerMessage | undefined) => void, onBadFrame: (err: Error) => void): void {
  const reader = new FrameReader(key);
  socket.on('data', (chunk: Buffer) => {
    let messages: unknown[];
    try {
      messages = reader.push(chunk);
    } catch (err) {
      onBadFrame(err as Error);
      return;
    }
    for (const raw of messages) onMessage(asPeerMessage(raw));
  });
}
