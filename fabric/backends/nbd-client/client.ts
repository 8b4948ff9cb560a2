/**
 * A BlockDevice served by a remote NBD server (nbdkit, qemu-nbd, another blockgate).
 *
 *   const disk = await NbdClient.open({ name, address: parseNbdAddress('unix:/run/x.sock')!, exportName: '' });
 *   NbdClient.detached(options, geometry)  // a client whose server is down now; connects on first use
 *
 * Requests go to the connection with the fewest in flight (several when the server allows
 * multi-conn and `connections` > 1). A lost connection fails its requests with EIO (ETIMEDOUT
 * for a request timeout); the next request reconnects, so a probe by the multipath layer
 * notices when the server is back. A server that comes back with another size is refused.
 */
import type { BlockDevice, BlockSizes, Capabilities, DeviceStatus, Extent, WriteOptions, ZeroOptions } from '../../device.js';
import { totalLength } from '../../device.js';
import { BlockError } from '../../errors.js';
import { logger, type Logger } from '../../log.js';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_ROTATIONAL,
  NBD_FLAG_SEND_CACHE,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
} from '../../protocols/nbd.js';
import { formatNbdAddress, type NbdAddress } from './address.js';
import { NbdConnection, type ConnectionOptions } from './connection.js';
import type { ExportInfo } from './handshake.js';
import { compareTokens, type Fenceable, type FenceToken, type TokenPresenter } from '../../fencing.js';

export interface NbdClientOptions {
  readonly name: string;
  readonly address: NbdAddress;
  /** Export name; '' is the server's default export. */
  readonly exportName?: string;
  /** Connections to open when the server advertises CAN_MULTI_CONN (default 1). */
  readonly connections?: number;
  /** A request unanswered this long fails with ETIMEDOUT (default 30 s). */
  readonly timeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** A fencing token to present from the first connection on (see fence()). */
  readonly fenceToken?: FenceToken;
}

/** What a device looks like from outside; a detached client borrows it from a sibling path. */
export interface NbdGeometry {
  readonly size: number;
  readonly blockSizes: BlockSizes;
  readonly capabilities: Capabilities;
}

/** Largest single request we send: nbdkit refuses payloads over 64 MiB. */
const MAX_PAYLOAD = 32 * 1024 * 1024;
/** How many more requests than the least busy connection one turn's batch may pile onto its own. */
const BATCH_SLACK = 16;
/** Requests this large are spread by load alone (1 MiB reads over 4 connections: 622 MiB/s spread, 392 batched). */
const SPREAD_MIN = 64 * 1024;
/** Trim/zero/status lengths are 32-bit on the wire; stay well inside, aligned. */
const MAX_RANGE = 2 ** 31;

export class NbdClient implements BlockDevice, Fenceable, TokenPresenter {
  readonly name: string;
  readonly size: number;
  readonly blockSizes: BlockSizes;
  readonly capabilities: Capabilities;
  private readonly exportName: string;
  private readonly wanted: number;
  private readonly log: Logger;
  private connections: NbdConnection[] = [];
  private connecting: Promise<void> | undefined;
  private closed = false;
  private lastError: string | undefined;
  private connects = 0;
  /** The fencing token presented to the server (NBD_OPT_BLOCKGATE_FENCE); undefined: none. */
  private fenceToken: FenceToken | undefined;
  /** Not connected since a loss (or since a detached start): the next connection is logged. */
  private lost = false;

  static async open(options: NbdClientOptions): Promise<NbdClient> {
    const first = await NbdConnection.open(connectionOptions(options));
    const client = new NbdClient(options, geometryOf(first.info));
    client.adopt(first);
    await client.fillConnections().catch(() => undefined);
    return client;
  }

  /**
   * A client for a server that cannot be reached now; it connects on first use. The geometry
   * is assumed (another path to the same disk, or a sibling replica): the server that answers
   * must match it — the same size, every capability assumed — or it is refused.
   */
  static detached(options: NbdClientOptions, geometry: NbdGeometry): NbdClient {
    const client = new NbdClient(options, geometry);
    client.lost = true;
    return client;
  }

  private constructor(
    private readonly options: NbdClientOptions,
    geometry: NbdGeometry,
  ) {
    this.name = options.name;
    this.size = geometry.size;
    this.blockSizes = geometry.blockSizes;
    this.capabilities = geometry.capabilities;
    this.exportName = options.exportName ?? '';
    this.fenceToken = options.fenceToken;
    this.wanted = geometry.capabilities.multiConn ? Math.max(1, options.connections ?? 1) : 1;
    this.log = logger('nbd-client', { device: this.name, address: formatNbdAddress(options.address) });
  }

  get geometry(): NbdGeometry {
    return { size: this.size, blockSizes: this.blockSizes, capabilities: this.capabilities };
  }

  read(offset: number, target: Buffer): Promise<void> {
    return this.send(NBD_CMD_READ, 0, offset, target.length, target) as Promise<never>;
  }

  write(offset: number, data: readonly Buffer[], options?: WriteOptions): Promise<void> {
    return this.send(NBD_CMD_WRITE, this.fuaFlag(options), offset, totalLength(data), undefined, data) as Promise<never>;
  }

  flush(): Promise<void> {
    if (!this.capabilities.flush) return Promise.resolve();
    return this.send(NBD_CMD_FLUSH, 0, 0, 0) as Promise<never>;
  }

  async trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    if (!this.capabilities.trim) throw new BlockError('ENOTSUP', `${this.name}: server does not support trim`);
    await this.inPieces(NBD_CMD_TRIM, this.fuaFlag(options), offset, length);
  }

  async writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    if (!this.capabilities.writeZeroes) throw new BlockError('ENOTSUP', `${this.name}: server does not support write zeroes`);
    if (options?.fastOnly && !this.capabilities.fastZero) throw new BlockError('ENOTSUP', `${this.name}: no fast zero`);
    let flags = this.fuaFlag(options);
    if (options?.noHole) flags |= NBD_CMD_FLAG_NO_HOLE;
    if (options?.fastOnly) flags |= NBD_CMD_FLAG_FAST_ZERO;
    await this.inPieces(NBD_CMD_WRITE_ZEROES, flags, offset, length);
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    if (!this.capabilities.blockStatus) return [{ length, hole: false, zero: false }];
    const asked = Math.min(length, this.rangeLimit());
    const extents = await this.send(NBD_CMD_BLOCK_STATUS, 0, offset, asked);
    // A server that answered without our context has told us nothing: all data.
    return extents && extents.length > 0 ? extents : [{ length: asked, hole: false, zero: false }];
  }

  async cache(offset: number, length: number): Promise<void> {
    if (!this.capabilities.cache) return;
    await this.send(NBD_CMD_CACHE, 0, offset, Math.min(length, this.rangeLimit()));
  }

  status(): DeviceStatus {
    const up = this.connections.length;
    return {
      state: this.closed || up === 0 ? 'failed' : up < this.wanted ? 'degraded' : 'optimal',
      detail: {
        address: formatNbdAddress(this.options.address),
        export: this.exportName,
        connections: up,
        wantedConnections: this.wanted,
        inFlight: this.connections.reduce((n, c) => n + c.inFlight, 0),
        connects: this.connects,
        ...(this.lastError ? { lastError: this.lastError } : {}),
      },
    };
  }

  /**
   * Present a newer fencing token: on every open connection at once (requests sent after this
   * call travel behind it), and at the handshake of every later one. A server without
   * blockgate's fencing extension ignores it. Only a client opened with a token can be fenced
   * (its connections negotiated the extension).
   */
  fence(token: FenceToken): void {
    if (this.fenceToken === undefined || compareTokens(token, this.fenceToken) <= 0) return;
    this.fenceToken = token;
    for (const c of this.connections) c.fence(token);
  }

  /** Fenceable: a new Primary's arbitration token as the term, this client's generation kept. */
  fenceTerm(term: number): void {
    if (this.fenceToken) this.fence({ term, generation: this.fenceToken.generation });
  }

  async close(): Promise<void> {
    this.closed = true;
    const open = this.connections;
    this.connections = [];
    await Promise.allSettled(open.map((c) => c.close()));
  }

  private fuaFlag(options: WriteOptions | undefined): number {
    return options?.fua && this.capabilities.fua ? NBD_CMD_FLAG_FUA : 0;
  }

  private rangeLimit(): number {
    return MAX_RANGE - (MAX_RANGE % this.blockSizes.minimum);
  }

  private async inPieces(command: number, flags: number, offset: number, length: number): Promise<void> {
    const limit = this.rangeLimit();
    for (let at = 0; at < length; at += limit) await this.send(command, flags, offset + at, Math.min(limit, length - at));
  }

  /** The hot path: pick the least busy connection, or connect first. */
  private send(
    command: number,
    flags: number,
    offset: number,
    length: number,
    target?: Buffer,
    payload?: readonly Buffer[],
  ): Promise<Extent[] | undefined> {
    const connection = this.pick(length);
    if (connection) return connection.request(command, flags, offset, length, target, payload);
    return this.connectThenSend(command, flags, offset, length, target, payload);
  }

  private async connectThenSend(
    command: number,
    flags: number,
    offset: number,
    length: number,
    target?: Buffer,
    payload?: readonly Buffer[],
  ): Promise<Extent[] | undefined> {
    if (this.closed) throw new BlockError('ESHUTDOWN', `device ${this.name} is closed`);
    await this.fillConnections();
    const connection = this.pick();
    if (!connection) throw new BlockError('EIO', `${this.name}: no connection to the server`, { transport: true });
    return connection.request(command, flags, offset, length, target, payload);
  }

  /**
   * The least busy connection, unless one already carries this turn's batch and is not much
   * busier: a burst then leaves in one writev on one socket rather than one per connection
   * (each costs a system call and, on a loaded proxy, its own reply stream to read), while
   * the next turn's burst goes to the least busy one, so the load still spreads. Requests
   * moving `length` bytes of SPREAD_MIN or more always go to the least busy connection: for
   * them the server's parallel sending on several sockets outweighs the per-request costs.
   */
  private pick(length = 0): NbdConnection | undefined {
    const all = this.connections;
    if (all.length <= 1) return all[0];
    let best = all[0]!;
    let batch = best.batching ? best : undefined;
    for (let i = 1; i < all.length; i++) {
      const c = all[i]!;
      if (c.inFlight < best.inFlight) best = c;
      if (c.batching) batch = c;
    }
    return batch && length < SPREAD_MIN && batch.inFlight < best.inFlight + BATCH_SLACK ? batch : best;
  }

  /** Open connections up to the wanted number; one attempt shared by all callers. */
  private fillConnections(): Promise<void> {
    this.connecting ??= this.connectMissing().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async connectMissing(): Promise<void> {
    const missing = this.wanted - this.connections.length;
    if (missing <= 0) return;
    const results = await Promise.allSettled(
      Array.from({ length: missing }, () => NbdConnection.open(connectionOptions(this.options, this.fenceToken))),
    );
    let firstError: unknown;
    for (const result of results) {
      if (result.status === 'rejected') firstError ??= result.reason;
      else if (this.closed) void result.value.close();
      else {
        const mismatch = this.mismatch(result.value.info);
        if (mismatch) {
          firstError ??= new BlockError('EIO', `${this.name}: ${mismatch}`);
          void result.value.close();
        } else this.adopt(result.value);
      }
    }
    if (this.connections.length === 0 && firstError !== undefined) {
      const error = firstError instanceof BlockError ? firstError : new BlockError('EIO', String(firstError));
      this.lastError = error.message;
      // Whatever stopped the connection (refused, reset, timed out, refused export), the
      // server cannot be reached: a transport failure, whatever code the attempt ended with.
      throw error.code === 'EIO' && error.transport ? error : new BlockError('EIO', error.message, { cause: error, transport: true });
    }
  }

  private adopt(connection: NbdConnection): void {
    connection.onClose = this.onClose;
    // A token raised while this connection was being opened is presented now, before any request.
    if (this.fenceToken !== undefined) connection.fence(this.fenceToken);
    this.connections.push(connection);
    this.connects++;
    if (this.lost) this.log.info({ connections: this.connections.length }, 'connected to the NBD server');
    this.lost = false;
    this.lastError = undefined;
  }

  private readonly onClose = (connection: NbdConnection, error: BlockError): void => {
    const i = this.connections.indexOf(connection);
    if (i < 0) return;
    this.connections.splice(i, 1);
    if (!this.closed) {
      this.lost = true;
      this.lastError = error.message;
      this.log.warn({ err: error.message, connections: this.connections.length }, 'NBD connection lost');
    }
  };

  /** Why the server's export is not the device this client stands for, if it is not. */
  private mismatch(info: ExportInfo): string | undefined {
    if (info.size !== this.size) return `server now exports ${info.size} bytes, not ${this.size}`;
    const offered = geometryOf(info);
    const lacking = (Object.keys(this.capabilities) as (keyof Capabilities)[]).filter(
      (k) => k !== 'rotational' && k !== 'readOnly' && this.capabilities[k] && !offered.capabilities[k],
    );
    if (offered.capabilities.readOnly && !this.capabilities.readOnly) lacking.push('readOnly');
    if (lacking.length > 0) return `server does not offer what this device was assumed to (${lacking.join(', ')})`;
    const { minimum, maximum } = offered.blockSizes;
    if (this.blockSizes.minimum % minimum !== 0 || maximum < this.blockSizes.maximum) {
      return `server's block sizes (${minimum}…${maximum}) do not fit the assumed ${this.blockSizes.minimum}…${this.blockSizes.maximum}`;
    }
    return undefined;
  }
}

function connectionOptions(options: NbdClientOptions, fenceToken = options.fenceToken): ConnectionOptions {
  return {
    address: options.address,
    exportName: options.exportName ?? '',
    connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
    timeoutMs: options.timeoutMs ?? 30_000,
    ...(fenceToken !== undefined && { fenceToken }),
  };
}

function geometryOf(info: ExportInfo): NbdGeometry {
  const f = info.transmissionFlags;
  const advertised = info.blockSizes;
  const minimum = advertised?.minimum || 1;
  const preferred = Math.max(minimum, advertised?.preferred || 4096);
  let maximum = Math.min(MAX_PAYLOAD, advertised?.maximum || MAX_PAYLOAD);
  maximum -= maximum % minimum;
  return {
    size: info.size,
    blockSizes: { minimum, preferred, maximum },
    capabilities: {
      readOnly: (f & NBD_FLAG_READ_ONLY) !== 0,
      flush: (f & NBD_FLAG_SEND_FLUSH) !== 0,
      fua: (f & NBD_FLAG_SEND_FUA) !== 0,
      trim: (f & NBD_FLAG_SEND_TRIM) !== 0,
      writeZeroes: (f & NBD_FLAG_SEND_WRITE_ZEROES) !== 0,
      fastZero: (f & NBD_FLAG_SEND_FAST_ZERO) !== 0,
      cache: (f & NBD_FLAG_SEND_CACHE) !== 0,
      blockStatus: info.allocationContext !== undefined,
      localBlockStatus: false,
      multiConn: (f & NBD_FLAG_CAN_MULTI_CONN) !== 0,
      rotational: (f & NBD_FLAG_ROTATIONAL) !== 0,
    },
  };
}
