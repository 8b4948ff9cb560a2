/**
 * One NBD connection in the transmission phase: sends requests (header then payload slices,
 * never joined; the requests of one loop turn corked into one writev), matches replies by cookie
 * in any order, and times requests out. Any failure of the connection fails every request
 * on it and ends the connection; the client (client.ts) opens new ones.
 *
 *   NbdConnection.open({ address, exportName, connectTimeoutMs, timeoutMs }); conn.onClose = …
 *   conn.request(command, flags, offset, length, target?, payload?) → Promise<Extent[] | undefined>
 *   conn.inFlight, conn.info, conn.close()
 */
import net from 'node:net';
import { ByteQueue } from '../../byte-queue.js';
import type { Extent } from '../../device.js';
import { BlockError, type BlockErrorCode } from '../../errors.js';
import { ExactReader } from '../../exact-reader.js';
import { NBD_CMD_BLOCKGATE_FENCE, NBD_CMD_DISC, NBD_CMD_READ, NBD_REQUEST_MAGIC, REQUEST_HEADER_SIZE } from '../../protocols/nbd.js';
import { logger } from '../../log.js';
import { StagedHeaders } from '../../staged-headers.js';
import { compareTokens, formatToken, type FenceToken } from '../../fencing.js';
import { connectOptions, formatNbdAddress, type NbdAddress } from './address.js';
import { negotiate, type ExportInfo, type HandshakeIo } from './handshake.js';
import { ReplyParser, type ReplySink } from './replies.js';
import { NbdRequest } from './request.js';

export interface ConnectionOptions {
  readonly address: NbdAddress;
  readonly exportName: string;
  readonly connectTimeoutMs: number;
  /** A request unanswered this long fails with ETIMEDOUT and drops the connection. */
  readonly timeoutMs: number;
  /** Present this fencing token (NBD_OPT_BLOCKGATE_FENCE) where the server knows the extension. */
  readonly fenceToken?: FenceToken;
}

const RECEIVE_BUFFER = 256 * 1024;
const fenceLog = logger('nbd-client');
const BIG_READ = 32 * 1024;

export class NbdConnection implements ReplySink {
  private readonly socket: net.Socket;
  private readonly receive = Buffer.allocUnsafe(RECEIVE_BUFFER);
  private readonly inflight = new Map<number, NbdRequest>();
  /** Byte-exact reads for the handshake, which is small and happens once per connection. */
  private handshake: ExactReader | undefined = new ExactReader(new ByteQueue());
  private parser: ReplyParser | undefined;
  /** The slice handed to the socket for a direct read, if any. */
  private direct: Buffer | undefined;
  private nextCookie = 1;
  /** Reads in flight long enough that receiving their payload in place beats a copy. */
  private bigReads = 0;
  private readonly headViews: Buffer[];
  private sweeper: NodeJS.Timeout | undefined;
  private corked = false;
  /** This turn's request headers, encoded side by side: one socket.write for a run of them. */
  private readonly headers: StagedHeaders;
  private readonly uncork = (): void => {
    this.corked = false;
    if (!this.socket.destroyed) this.headers.flush();
    this.socket.uncork();
  };
  private closedWith: BlockError | undefined;
  info!: ExportInfo;
  /** The fencing token the server holds for this connection (undefined: not fenced). */
  fenceToken: FenceToken | undefined;
  /** Called once when an opened connection ends for any reason. */
  onClose: ((connection: NbdConnection, error: BlockError) => void) | undefined;

  static async open(options: ConnectionOptions): Promise<NbdConnection> {
    const connection = new NbdConnection(options);
    await connection.start();
    return connection;
  }

  private constructor(private readonly options: ConnectionOptions) {
    this.headViews = Array.from({ length: 64 }, (_, n) => this.receive.subarray(0, n));
    this.headers = new StagedHeaders((bytes) => void this.socket.write(bytes));
    this.socket = net.connect({
      ...connectOptions(options.address),
      onread: {
        buffer: () => this.nextBuffer(),
        callback: (n: number, buf: Uint8Array) => {
          this.onRead(n, buf);
          return true;
        },
      },
    });
    // Requests are small and latency-bound: never let Nagle hold one back.
    if ('port' in options.address) this.socket.setNoDelay(true);
    this.socket.on('error', (err) => this.fail('EIO', `connection to ${this.where}: ${err.message}`));
    this.socket.on('close', () => this.fail('EIO', `connection to ${this.where} closed`));
  }

  get where(): string {
    return formatNbdAddress(this.options.address);
  }

  get inFlight(): number {
    return this.inflight.size;
  }

  /** Requests were sent in this turn of the event loop: they leave together at its end. */
  get batching(): boolean {
    return this.corked;
  }

  get open(): boolean {
    return this.closedWith === undefined && this.parser !== undefined;
  }

  private async start(): Promise<void> {
    const timer = setTimeout(
      () => this.fail('ETIMEDOUT', `connecting to ${this.where} took over ${this.options.connectTimeoutMs} ms`),
      this.options.connectTimeoutMs,
    );
    try {
      const io: HandshakeIo = { read: (n) => this.handshake!.read(n), write: (b) => void this.socket.write(b) };
      this.info = await negotiate(io, this.options.exportName, this.options.fenceToken);
      if (this.info.fenced) this.fenceToken = this.options.fenceToken;
    } catch (err) {
      this.fail('EIO', `handshake with ${this.where} failed`);
      throw err instanceof BlockError ? err : (this.closedWith ?? new BlockError('EIO', String(err), { transport: true }));
    } finally {
      clearTimeout(timer);
    }
    // What arrived after the handshake (nothing, with a well-behaved server).
    const queue = this.handshake!.queue;
    this.handshake = undefined;
    this.parser = new ReplyParser(this, this.info.allocationContext, this.info.structuredReplies);
    if (queue.length > 0) {
      const leftover = queue.readContiguous(queue.length, false);
      this.parser.consume(leftover, 0, leftover.length);
    }
    const period = Math.max(10, Math.min(1000, this.options.timeoutMs / 4));
    this.sweeper = setInterval(() => this.sweep(), period).unref();
  }

  /**
   * Send one request; resolves with base:allocation extents for block status, else undefined.
   * `payload` slices are written behind the header without being joined.
   */
  request(
    command: number,
    flags: number,
    offset: number,
    length: number,
    target?: Buffer,
    payload?: readonly Buffer[],
  ): Promise<Extent[] | undefined> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const cookie = this.takeCookie();
    return new Promise((resolve, reject) => {
      const request = new NbdRequest(cookie, command, offset, length, target, resolve, reject);
      request.deadline = Date.now() + this.options.timeoutMs;
      this.inflight.set(cookie, request);
      if (command === NBD_CMD_READ && length >= BIG_READ) this.bigReads++;
      // Requests issued in the same turn of the event loop (every client read the poll
      // phase delivered, not only this one) leave in one writev: cork now, uncork at its end.
      if (!this.corked) {
        this.corked = true;
        this.socket.cork();
        setImmediate(this.uncork);
      }
      const at = this.headers.reserve(REQUEST_HEADER_SIZE);
      const header = this.headers.slab;
      header.writeUInt32BE(NBD_REQUEST_MAGIC, at);
      header.writeUInt16BE(flags, at + 4);
      header.writeUInt16BE(command, at + 6);
      header.writeUInt32BE(0, at + 8);
      header.writeUInt32BE(cookie, at + 12);
      header.writeUInt32BE(Math.floor(offset / 0x100000000), at + 16);
      header.writeUInt32BE(offset >>> 0, at + 20);
      header.writeUInt32BE(length, at + 24);
      if (payload) {
        // The headers so far, this one last, then the payload slices as they are.
        this.headers.flush();
        for (const slice of payload) this.socket.write(slice);
      }
    });
  }

  /**
   * Present a newer fencing token without reconnecting (NBD_CMD_BLOCKGATE_FENCE). The server
   * applies it as it parses it, so requests sent after this call are judged by it without
   * waiting for the reply. A no-op on a connection whose server does not fence.
   */
  fence(token: FenceToken): void {
    if (this.fenceToken === undefined || compareTokens(token, this.fenceToken) <= 0 || this.closedWith) return;
    this.fenceToken = token;
    this.request(NBD_CMD_BLOCKGATE_FENCE, 0, token.term, token.generation).catch((err: unknown) => {
      // Refused: another client holds a newer token, and this connection's requests will be
      // answered EPERM; a lost connection is noticed by the requests themselves.
      if (!this.closedWith) fenceLog.warn({ server: this.where, token: formatToken(token), err: err instanceof Error ? err.message : String(err) }, 'fencing token refused');
    });
  }

  /** Polite disconnect: NBD_CMD_DISC once nothing is in flight, then close. */
  async close(): Promise<void> {
    if (this.closedWith) return;
    if (this.parser) {
      this.headers.flush(); // requests of this turn go before the disconnect
      const header = Buffer.alloc(REQUEST_HEADER_SIZE);
      header.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
      header.writeUInt16BE(NBD_CMD_DISC, 6);
      this.socket.end(header);
    }
    this.fail('ESHUTDOWN', `connection to ${this.where} closed by the client`);
  }

  /** Drop the connection now, failing what is in flight with `code`. */
  fail(code: BlockErrorCode, message: string): void {
    if (this.closedWith) return;
    // Whatever ends a connection fails its requests as a transport failure, not a medium error.
    const error = new BlockError(code, message, { transport: true });
    this.closedWith = error;
    this.headers.discard();
    if (this.sweeper) clearInterval(this.sweeper);
    if (code !== 'ESHUTDOWN' || !this.socket.writableEnded) this.socket.destroy();
    this.handshake?.fail(error);
    const pending = [...this.inflight.values()];
    this.inflight.clear();
    this.bigReads = 0;
    for (const request of pending) request.reject(error);
    if (this.parser) this.onClose?.(this, error);
  }

  lookup(cookie: number): NbdRequest | undefined {
    return this.inflight.get(cookie);
  }

  complete(request: NbdRequest): void {
    this.inflight.delete(request.cookie);
    if (request.command === NBD_CMD_READ && request.length >= BIG_READ) this.bigReads--;
    if (request.errorCode === undefined) request.resolve(request.extents);
    else {
      const detail = request.errorMessage ? `: ${request.errorMessage}` : '';
      request.reject(new BlockError(request.errorCode, `server ${this.where} failed the request${detail}`));
    }
  }

  violation(message: string): void {
    this.fail('EIO', `protocol error from ${this.where}: ${message}`);
  }

  private takeCookie(): number {
    let cookie = this.nextCookie;
    while (this.inflight.has(cookie)) cookie = (cookie + 1) >>> 0 || 1;
    this.nextCookie = (cookie + 1) >>> 0 || 1;
    return cookie;
  }

  /**
   * The socket reads into what this returns. While big reads are in flight, headers are read
   * on their own so each payload can then be received straight into its target.
   */
  private nextBuffer(): Uint8Array {
    const parser = this.parser;
    const direct = parser?.directTarget();
    this.direct = direct;
    if (direct) return direct;
    if (this.bigReads > 0 && parser) {
      const n = parser.bytesBeforePayload();
      if (n > 0 && n < this.headViews.length) return this.headViews[n]!;
    }
    return this.receive;
  }

  private onRead(n: number, buf: Uint8Array): void {
    if (this.closedWith) return;
    if (this.handshake) {
      // A copy: the socket reads the next bytes into the same receive buffer.
      this.handshake.queue.push(Buffer.from(buf.subarray(0, n)));
      return this.handshake.fed();
    }
    if (buf === this.direct) this.parser!.receivedDirect(n);
    else this.parser!.consume(this.receive, 0, n);
    this.direct = undefined;
  }

  private sweep(): void {
    const oldest = this.inflight.values().next();
    if (!oldest.done && oldest.value.deadline <= Date.now()) {
      this.fail('ETIMEDOUT', `server ${this.where} did not answer within ${this.options.timeoutMs} ms`);
    }
  }
}
