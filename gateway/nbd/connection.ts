import type { Socket } from 'node:net';
import type { BlockDevice } from '../../fabric/device.js';
import type { BufferPool } from '../../fabric/buffers.js';
import { ExactReader } from '../../fabric/exact-reader.js';
import type { Logger } from '../../fabric/log.js';
import { MAX_OPTION_LENGTH } from '../../fabric/protocols/nbd.js';
import { SocketReceiver, type ReceivePath } from '../../fabric/socket-receiver.js';
import { NbdProtocolError, nbdErrorMessage } from './errors.js';
import { advertisedBlockSizes, transmissionFlags } from './export-info.js';
import { handshake, type NegotiationIo } from './handshake.js';
import { negotiateOptions, type Negotiated, type NegotiationContext } from './options.js';
import { ReplyWriter } from './reply-writer.js';
import type { NbdTls, TlsPeer } from './tls.js';
import { Transmission } from './transmission.js';

export interface ConnectionContext extends NegotiationContext {
  /** Port id the switch counts this connection's I/O under. */
  readonly portId: string;
  readonly pool: BufferPool;
  /** 'data-events' keeps every connection off the receive arenas (tests of the fallback). */
  readonly receive: ReceivePath;
  /** A client still negotiating after this long is dropped; 0 never. */
  readonly handshakeTimeoutMs: number;
  /** STARTTLS is offered when set. */
  readonly tls?: NbdTls;
  /** Wraps each connection's view of its export (e.g. to enforce SCSI reservations); none: as it is. */
  readonly guard?: (device: BlockDevice) => BlockDevice;
}

/** During negotiation, stop reading when a client sends this much ahead of our replies. */
const NEGOTIATION_BACKLOG = 2 * MAX_OPTION_LENGTH;

class PeerGone extends Error {}

/**
 * One client: the handshake and option haggling (awaiting bytes as they come), then the
 * transmission phase driven synchronously as bytes arrive. Negotiation reads 'data' events;
 * transmission reads into pooled receive arenas where Node allows it (fabric/socket-receiver.ts),
 * so a socket that is only connected, or still negotiating, pins no arena.
 * The socket must arrive paused (pauseOnConnect).
 */
export class NbdConnection {
  /** Settles when the socket has closed, whatever the reason. */
  readonly closed: Promise<void>;
  /** The client's socket: the TCP or Unix one, then the TLS one over it after STARTTLS. */
  private socket: Socket;
  private receiver: SocketReceiver;
  private reader: ExactReader;
  private tls: TlsPeer | undefined;
  private transmission: Transmission | null = null;
  private inputEnded = false;
  private isClosed = false;
  private drainTimer: NodeJS.Timeout | null = null;
  /** The export chosen at the end of negotiation, for the session list. */
  exportName: string | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;

  private readonly markClosed: () => void;

  constructor(
    socket: Socket,
    private readonly ctx: ConnectionContext,
    private readonly log: Logger,
  ) {
    let markClosed!: () => void;
    this.closed = new Promise((resolve) => (markClosed = resolve));
    this.markClosed = markClosed;
    this.socket = socket;
    this.receiver = new SocketReceiver(socket, () => this.onData());
    this.reader = new ExactReader(this.receiver.queue);
    this.watch(socket);
  }

  /** End of input, errors and the close, for the socket in use (the TLS one replaces the first). */
  private watch(socket: Socket): void {
    socket.on('end', () => {
      if (socket === this.socket) this.onInputEnd();
    });
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
    socket.on('close', () => {
      if (this.isClosed) return;
      this.isClosed = true;
      if (this.drainTimer) clearTimeout(this.drainTimer);
      clearTimeout(this.handshakeTimer);
      this.reader.fail(new PeerGone('connection closed'));
      this.receiver.close();
      this.log.debug('connection closed');
      this.markClosed();
    });
  }

  start(): void {
    this.log.debug('connection opened');
    const timeoutMs = this.ctx.handshakeTimeoutMs;
    if (timeoutMs > 0) {
      // A client that connects and never negotiates would hold its socket for ever.
      this.handshakeTimer = setTimeout(() => {
        this.ctx.refusals.refuse('nbd', 'timeout', this.log, { afterMs: timeoutMs });
        this.socket.destroy();
      }, timeoutMs);
      this.handshakeTimer.unref();
    }
    this.socket.resume();
    // negotiate() answers protocol errors and a departed peer itself: what reaches here is a
    // fault of ours that a client's input provoked, and is logged as one.
    this.negotiate().catch((err: unknown) => {
      this.log.error({ err }, 'negotiation failed: internal error');
      this.socket.destroy();
    });
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
    const tls = this.ctx.tls;
    const address = this.socket.remoteAddress;
    const io: NegotiationIo = {
      read: (n) => this.read(n),
      write: (data) => {
        if (!this.socket.destroyed) this.socket.write(data);
      },
      ...(address !== undefined && { address }),
      ...(tls && { startTls: () => this.startTls(tls) }),
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
    clearTimeout(this.handshakeTimer);
    const opened = this.ctx.fabric.openChannel(n.entry.name, { id: this.ctx.portId, protocol: 'nbd' });
    const channel = this.ctx.guard ? this.ctx.guard(opened) : opened;
    this.exportName = n.entry.name;
    const writer = new ReplyWriter(this.socket, n.structuredReplies, this.ctx.pool);
    // TLS connections read decrypted 'data' events: only plaintext ones can use receive arenas.
    this.receiver.established(this.ctx.receive === 'arenas' && !this.tls ? this.ctx.pool : null);
    this.transmission = new Transmission({
      socket: this.socket,
      queue: this.receiver.queue,
      device: channel,
      writer,
      pool: this.ctx.pool,
      flags: transmissionFlags(channel.capabilities, n.structuredReplies),
      maxPayload: Math.min(advertisedBlockSizes(channel).maximum, channel.blockSizes.maximum),
      allocationContext: n.allocationContext,
      ...(n.fence && { fence: n.fence }),
      log: this.log,
      onEnd: (reason, violation) => this.onTransmissionEnd(reason, violation),
    });
    this.log.debug({ export: n.entry.name, structured: n.structuredReplies, receive: this.receiver.path }, 'transmission started');
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

  private onData(): void {
    if (this.transmission) {
      this.transmission.pump();
      return;
    }
    this.reader.fed();
    if (this.receiver.queue.length > NEGOTIATION_BACKLOG) this.socket.pause();
  }

  private onInputEnd(): void {
    this.inputEnded = true;
    if (this.transmission) {
      // Whatever complete requests arrived still get served; a torn one is dropped.
      this.transmission.pump();
      this.transmission.end('client closed its side');
    } else this.reader.fail(new PeerGone('client closed during negotiation'));
  }

  /**
   * Negotiation reads: views of 'data' chunks, which no one reuses, so the handshake code
   * may keep them across awaits.
   */
  private read(n: number): Promise<Buffer> {
    if (this.receiver.queue.length < n && this.socket.isPaused()) this.socket.resume();
    return this.reader.read(n);
  }

  /**
   * After our ACK to NBD_OPT_STARTTLS: the handshake over the same socket, then negotiation
   * goes on over TLS. Bytes the client sent after STARTTLS but before the handshake would be
   * plaintext smuggled into the TLS session: the connection is dropped instead.
   */
  private async startTls(tls: NbdTls): Promise<TlsPeer> {
    const raw = this.socket;
    if (this.receiver.queue.length > 0 || raw.readableLength > 0) {
      throw new NbdProtocolError('the client sent data after NBD_OPT_STARTTLS before the TLS handshake');
    }
    this.receiver.close();
    if (raw.isPaused()) raw.resume();
    let upgraded;
    try {
      upgraded = await tls.upgrade(raw);
    } catch (err) {
      this.ctx.refusals.refuse('nbd', 'tls-failed', this.log, { why: nbdErrorMessage(err), ...(raw.remoteAddress && { address: raw.remoteAddress }) });
      throw new NbdProtocolError(`TLS handshake failed: ${nbdErrorMessage(err)}`);
    }
    const { socket, peer } = upgraded;
    this.socket = socket;
    this.receiver = new SocketReceiver(socket, () => this.onData());
    this.reader = new ExactReader(this.receiver.queue);
    this.watch(socket);
    this.tls = peer;
    this.log.info({ tls: peer.protocol, cipher: peer.cipher, ...(peer.identity !== undefined && { identity: peer.identity }) }, 'TLS started');
    return peer;
  }
}
