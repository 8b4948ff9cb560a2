import type { Socket } from 'node:net';
import { ReceiveArenas, type BufferPool, type Retained } from '../../fabric/buffers.js';
import type { Logger } from '../../fabric/log.js';
import { MAX_OPTION_LENGTH } from '../../fabric/protocols/nbd.js';
import { ByteQueue } from './byte-queue.js';
import { NbdProtocolError, nbdErrorMessage } from './errors.js';
import { advertisedBlockSizes, transmissionFlags } from './export-info.js';
import { handshake, type NegotiationIo } from './handshake.js';
import { readIntoOwnBuffers } from './own-read-buffers.js';
import { negotiateOptions, type Negotiated, type NegotiationContext } from './options.js';
import { ReplyWriter } from './reply-writer.js';
import { Transmission } from './transmission.js';

export interface ConnectionContext extends NegotiationContext {
  /** Port id the switch counts this connection's I/O under. */
  readonly portId: string;
  readonly pool: BufferPool;
}

/** During negotiation, stop reading when a client sends this much ahead of our replies. */
const NEGOTIATION_BACKLOG = 2 * MAX_OPTION_LENGTH;

class PeerGone extends Error {}

/**
 * One client: the handshake and option haggling (awaiting bytes as they come), then the
 * transmission phase driven synchronously as bytes arrive. The socket reads into pooled
 * receive arenas where Node allows it (see own-read-buffers.ts), else via 'data' events.
 * The socket must arrive paused (pauseOnConnect).
 */
export class NbdConnection {
  /** Settles when the socket has closed, whatever the reason. */
  readonly closed: Promise<void>;
  private readonly queue = new ByteQueue();
  private transmission: Transmission | null = null;
  private waiter: { n: number; resolve: () => void; reject: (err: Error) => void } | null = null;
  private inputEnded = false;
  private isClosed = false;
  private drainTimer: NodeJS.Timeout | null = null;
  private readonly arenas: ReceiveArenas;

  constructor(
    private readonly socket: Socket,
    private readonly ctx: ConnectionContext,
    private readonly log: Logger,
  ) {
    let markClosed!: () => void;
    this.closed = new Promise((resolve) => (markClosed = resolve));
    const arenas = (this.arenas = new ReceiveArenas(ctx.pool));
    const own = readIntoOwnBuffers(
      socket,
      () => arenas.region(),
      (data) => {
        const { chunk, owner } = arenas.filled(data.length);
        this.onData(chunk, owner);
      },
    );
    if (!own) socket.on('data', (chunk: Buffer) => this.onData(chunk, null));
    socket.on('end', () => this.onInputEnd());
    socket.on('error', (err) => log.debug({ err: err.message }, 'socket error'));
    socket.on('close', () => {
      this.isClosed = true;
      if (this.drainTimer) clearTimeout(this.drainTimer);
      this.wakeWaiter(new PeerGone('connection closed'));
      this.queue.clear();
      arenas.close();
      log.debug('connection closed');
      markClosed();
    });
  }

  start(): void {
    this.log.debug('connection opened');
    this.socket.resume();
    this.negotiate().catch((err: unknown) => this.drop(`negotiation: ${nbdErrorMessage(err)}`));
  }

  /**
   * Stop taking requests, let in-flight ones reply and flush, then close; connections
   * still negotiating, or still busy after `drainMs`, are cut.
   */
  shutdown(drainMs: number): Promise<void> {
    if (this.isClosed) return this.closed;
    if (!this.transmission) {
      this.socket.destroy();
      return this.closed;
    }
    this.drainTimer = setTimeout(() => this.socket.destroy(), drainMs);
    this.drainTimer.unref();
    this.transmission.end('server shutting down');
    return this.closed;
  }

  private async negotiate(): Promise<void> {
    const io: NegotiationIo = {
      read: (n) => this.read(n),
      write: (data) => {
        if (!this.socket.destroyed) this.socket.write(data);
      },
    };
    let negotiated: Negotiated | null;
    try {
      const client = await handshake(io);
      negotiated = await negotiateOptions(io, client, this.ctx);
    } catch (err) {
      if (err instanceof PeerGone) {
        this.log.debug('client left during negotiation');
        this.socket.destroy();
      } else if (err instanceof NbdProtocolError) {
        this.log.warn({ reason: err.message }, 'negotiation failed');
        this.socket.destroy();
      } else throw err;
      return;
    }
    if (negotiated === null) {
      this.log.debug('client aborted negotiation');
      this.socket.end();
      return;
    }
    this.enterTransmission(negotiated);
  }

  private enterTransmission(n: Negotiated): void {
    const channel = this.ctx.fabric.openChannel(n.entry.name, { id: this.ctx.portId, protocol: 'nbd' });
    const writer = new ReplyWriter(this.socket, n.structuredReplies, this.ctx.pool);
    this.transmission = new Transmission({
      socket: this.socket,
      queue: this.queue,
      device: channel,
      writer,
      pool: this.ctx.pool,
      flags: transmissionFlags(channel.capabilities, n.structuredReplies),
      maxPayload: Math.min(advertisedBlockSizes(channel).maximum, channel.blockSizes.maximum),
      allocationContext: n.allocationContext,
      log: this.log,
      onEnd: (reason, violation) => this.onTransmissionEnd(reason, violation),
    });
    this.log.debug({ export: n.entry.name, structured: n.structuredReplies }, 'transmission started');
    if (this.socket.isPaused()) this.socket.resume();
    if (this.inputEnded) this.transmission.end('client closed its side');
    this.transmission.pump();
  }

  private onTransmissionEnd(reason: string, violation: boolean): void {
    if (violation) {
      this.log.warn({ reason }, 'protocol violation, dropping connection');
      this.socket.destroy();
      return;
    }
    this.log.debug({ reason }, 'transmission ended');
    // end() sends every queued reply before the FIN; the client has nothing more to say
    // (or already left), so the socket is released as soon as that is done.
    this.socket.end(() => this.socket.destroy());
  }

  private onData(chunk: Buffer, owner: Retained | null): void {
    if (this.isClosed) {
      owner?.release();
      return;
    }
    this.queue.push(chunk, owner);
    if (this.transmission) {
      this.transmission.pump();
      return;
    }
    if (this.waiter && this.queue.length >= this.waiter.n) this.wakeWaiter(null);
    else if (this.queue.length > NEGOTIATION_BACKLOG) this.socket.pause();
  }

  private onInputEnd(): void {
    this.inputEnded = true;
    if (this.transmission) {
      // Whatever complete requests arrived still get served; a torn one is dropped.
      this.transmission.pump();
      this.transmission.end('client closed its side');
    } else this.wakeWaiter(new PeerGone('client closed during negotiation'));
  }

  private read(n: number): Promise<Buffer> {
    if (this.queue.length >= n) return Promise.resolve(this.take(n));
    if (this.inputEnded || this.isClosed) return Promise.reject(new PeerGone('connection closed'));
    if (this.socket.isPaused()) this.socket.resume();
    return new Promise<void>((resolve, reject) => (this.waiter = { n, resolve, reject })).then(() => this.take(n));
  }

  /**
   * Negotiation bytes are not data-path traffic, so the copy is not counted. They are
   * copied because the handshake code may keep them across awaits, while a view into a
   * receive arena is only valid until the queue moves on.
   */
  private take(n: number): Buffer {
    return Buffer.from(this.queue.readContiguous(n, false));
  }

  private wakeWaiter(err: Error | null): void {
    const waiter = this.waiter;
    if (!waiter) return;
    this.waiter = null;
    if (err) waiter.reject(err);
    else waiter.resolve();
  }

  private drop(reason: string): void {
    this.log.warn({ reason }, 'dropping connection');
    this.socket.destroy();
  }
}
