import type { Socket } from 'node:net';
import type { BufferPool } from '../../fabric/buffers.js';
import type { BlockDevice, Extent, WriteOptions, ZeroOptions } from '../../fabric/device.js';
import type { Logger } from '../../fabric/log.js';
import {
  NBD_CMD_BLOCKGATE_FENCE,
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_DISC,
  NBD_CMD_FLAG_DF,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_EINVAL,
  NBD_EPERM,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_CACHE,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
} from '../../fabric/protocols/nbd.js';
import type { ByteQueue } from '../../fabric/byte-queue.js';
import { nbdErrorMessage, nbdErrorOf } from './errors.js';
import { descriptorsOf, planSegments } from './extents.js';
import type { ConnectionFence } from './fencing.js';
import type { ReplyWriter } from './reply-writer.js';
import { RequestReader, type NbdRequest } from './request-reader.js';

export interface TransmissionOptions {
  readonly socket: Socket;
  readonly queue: ByteQueue;
  readonly device: BlockDevice;
  readonly writer: ReplyWriter;
  readonly pool: BufferPool;
  /** Transmission flags as advertised to this client. */
  readonly flags: number;
  /** Largest read or write payload accepted (the advertised maximum block size). */
  readonly maxPayload: number;
  /** base:allocation context id, 0 if the client selected none. */
  readonly allocationContext: number;
  /** The connection's fencing token, when it negotiated one: requests are refused once it is stale. */
  readonly fence?: ConnectionFence;
  readonly log: Logger;
  /** Called once the connection is done: after DISC, end of input or a violation. */
  readonly onEnd: (reason: string, violation: boolean) => void;
}

/** Stop reading while this many requests are being served… */
const MAX_IN_FLIGHT = 128;
/** …or while this many payload bytes are held by requests and unsent replies. */
const MAX_IN_FLIGHT_BYTES = 64 * 1024 * 1024;
/**
 * …or while replies this large wait in the socket: a client that does not read its
 * replies stops being read. (A little slack, so one big read reply does not stall the
 * pipeline until it drains.)
 */
const MAX_UNSENT_REPLY_BYTES = 4 * 1024 * 1024;
/**
 * Reads this large are worth a block-status look-up to send holes instead of zeroes, where
 * the device answers it locally (capabilities.localBlockStatus).
 */
const SPARSE_READ_MIN = 256 * 1024;

const FUA: WriteOptions = Object.freeze({ fua: true });
const KNOWN_FLAGS = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_DF | NBD_CMD_FLAG_REQ_ONE | NBD_CMD_FLAG_FAST_ZERO;

type Invalid = readonly [errno: number, message: string];

/**
 * The transmission phase of one connection: validates each request, hands it to the
 * device, and replies as each completes (in any order). Reading stops while too much is
 * in flight or the socket's replies are not drained, and resumes on 'drain'.
 */
export class Transmission {
  private readonly reader: RequestReader;
  private inFlight = 0;
  private inFlightBytes = 0;
  private paused = false;
  /** DISC received, input ended, or the server is draining: no more requests. */
  private ending = false;
  private endReason = '';
  /** Requests refused for a stale fencing token (logged once per connection, then counted). */
  private fenced = 0;

  constructor(private readonly o: TransmissionOptions) {
    this.reader = new RequestReader(o.queue, o.maxPayload);
    o.socket.on('drain', () => this.maybeResume());
  }

  /** Parse and dispatch every complete request in the queue. */
  pump(): void {
    while (!this.paused && !this.ending) {
      let req: NbdRequest | null;
      try {
        req = this.reader.next();
      } catch (err) {
        this.ending = true;
        this.o.onEnd(nbdErrorMessage(err), true);
        return;
      }
      if (req === null) return;
      if (req.type === NBD_CMD_DISC) {
        this.end('client sent NBD_CMD_DISC');
        return;
      }
      this.dispatch(req);
      if (this.overloaded()) {
        this.paused = true;
        this.o.socket.pause();
      }
    }
  }

  /** No more requests will be read; the connection closes once in-flight ones replied. */
  end(reason: string): void {
    if (this.ending && this.endReason) return;
    this.ending = true;
    this.endReason = reason;
    this.o.socket.pause();
    if (this.inFlight === 0) this.o.onEnd(reason, false);
  }

  private overloaded(): boolean {
    return (
      this.inFlight >= MAX_IN_FLIGHT ||
      this.inFlightBytes >= MAX_IN_FLIGHT_BYTES ||
      this.o.socket.writableLength >= MAX_UNSENT_REPLY_BYTES
    );
  }

  private maybeResume(): void {
    if (!this.paused || this.ending || this.overloaded()) return;
    this.paused = false;
    this.o.socket.resume();
    this.pump();
  }

  private complete(bytes: number): void {
    this.inFlight--;
    this.inFlightBytes -= bytes;
    if (this.ending) {
      if (this.inFlight === 0 && this.endReason) this.o.onEnd(this.endReason, false);
    } else this.maybeResume();
  }

  private dispatch(req: NbdRequest): void {
    const fence = this.o.fence;
    if (fence) {
      if (req.type === NBD_CMD_BLOCKGATE_FENCE) {
        this.newToken(req, fence);
        return;
      }
      // Judged now, as the request is parsed: requests queued behind a newer token's arrival
      // are refused, whenever the client sent them.
      if (fence.stale()) {
        releaseHolds(req);
        if (this.fenced++ === 0) this.o.log.warn({ export: fence.exportName, token: fence.own }, `refusing a stale client: ${fence.describe()}`);
        this.o.writer.error(req, NBD_EPERM, fence.describe());
        return;
      }
    }
    const invalid = this.validate(req);
    if (invalid) {
      releaseHolds(req);
      this.o.writer.error(req, invalid[0], invalid[1]);
      return;
    }
    const device = this.o.device;
    const fua = (req.flags & NBD_CMD_FLAG_FUA) !== 0;
    switch (req.type) {
      case NBD_CMD_READ:
        this.read(req);
        return;
      case NBD_CMD_WRITE: {
        const op = device.write(req.offset, req.payload ?? [], fua ? FUA : undefined);
        // The payload's memory may be reused only once the device is done with it.
        if (req.holds) op.then(() => releaseHolds(req), () => releaseHolds(req));
        this.track(req, req.length, op);
        return;
      }
      case NBD_CMD_FLUSH:
        this.track(req, 0, device.flush());
        return;
      case NBD_CMD_TRIM:
        this.track(req, 0, device.trim(req.offset, req.length, fua ? FUA : undefined));
        return;
      case NBD_CMD_WRITE_ZEROES: {
        const options: ZeroOptions = {
          fua,
          noHole: (req.flags & NBD_CMD_FLAG_NO_HOLE) !== 0,
          fastOnly: (req.flags & NBD_CMD_FLAG_FAST_ZERO) !== 0,
        };
        this.track(req, 0, device.writeZeroes(req.offset, req.length, options), options.fastOnly);
        return;
      }
      case NBD_CMD_CACHE:
        this.track(req, 0, device.cache(req.offset, req.length));
        return;
      case NBD_CMD_BLOCK_STATUS:
        this.blockStatus(req);
        return;
    }
  }

  /** NBD_CMD_BLOCKGATE_FENCE: the term is in the offset field, the generation in the length field. */
  private newToken(req: NbdRequest, fence: ConnectionFence): void {
    if (req.flags !== 0) {
      this.o.writer.error(req, NBD_EINVAL, 'NBD_CMD_BLOCKGATE_FENCE takes no flags');
      return;
    }
    if (!fence.raise({ term: req.offset, generation: req.length })) {
      this.o.writer.error(req, NBD_EPERM, `new ${fence.describe()}`);
      return;
    }
    this.fenced = 0;
    this.o.log.debug({ export: fence.exportName, token: fence.own }, 'fencing token raised');
    this.o.writer.ok(req);
  }

  /** Everything the spec says to refuse before touching the device (ranges: the device). */
  private validate(req: NbdRequest): Invalid | null {
    const flags = this.o.flags;
    if (req.oversized) return [NBD_EINVAL, `write of ${req.length} bytes exceeds the maximum block size ${this.o.maxPayload}`];
    if ((req.flags & ~KNOWN_FLAGS) !== 0) return [NBD_EINVAL, `unknown command flags 0x${req.flags.toString(16)}`];
    if (req.flags & NBD_CMD_FLAG_FUA && !(flags & NBD_FLAG_SEND_FUA)) return [NBD_EINVAL, 'FUA was not negotiated'];
    let allowed = NBD_CMD_FLAG_FUA;
    switch (req.type) {
      case NBD_CMD_READ:
        if (flags & NBD_FLAG_SEND_DF) allowed |= NBD_CMD_FLAG_DF;
        break;
      case NBD_CMD_WRITE:
        if (flags & NBD_FLAG_READ_ONLY) return [NBD_EPERM, 'export is read-only'];
        break;
      case NBD_CMD_FLUSH:
        if (!(flags & NBD_FLAG_SEND_FLUSH)) return [NBD_EINVAL, 'flush is not supported by this export'];
        if (req.offset !== 0 || req.length !== 0) return [NBD_EINVAL, 'flush offset and length must be zero'];
        break;
      case NBD_CMD_TRIM:
        if (flags & NBD_FLAG_READ_ONLY) return [NBD_EPERM, 'export is read-only'];
        if (!(flags & NBD_FLAG_SEND_TRIM)) return [NBD_EINVAL, 'trim is not supported by this export'];
        break;
      case NBD_CMD_WRITE_ZEROES:
        if (flags & NBD_FLAG_READ_ONLY) return [NBD_EPERM, 'export is read-only'];
        if (!(flags & NBD_FLAG_SEND_WRITE_ZEROES)) return [NBD_EINVAL, 'write zeroes is not supported by this export'];
        allowed |= NBD_CMD_FLAG_NO_HOLE;
        if (flags & NBD_FLAG_SEND_FAST_ZERO) allowed |= NBD_CMD_FLAG_FAST_ZERO;
        break;
      case NBD_CMD_CACHE:
        if (!(flags & NBD_FLAG_SEND_CACHE)) return [NBD_EINVAL, 'cache is not supported by this export'];
        break;
      case NBD_CMD_BLOCK_STATUS:
        if (this.o.allocationContext === 0) return [NBD_EINVAL, 'no metadata context was negotiated'];
        allowed |= NBD_CMD_FLAG_REQ_ONE;
        break;
      default:
        return [NBD_EINVAL, `unknown command ${req.type}`];
    }
    if ((req.flags & ~allowed) !== 0) return [NBD_EINVAL, `flags 0x${req.flags.toString(16)} not allowed on command ${req.type}`];
    if ((req.type === NBD_CMD_READ || req.type === NBD_CMD_CACHE) && req.length > this.o.maxPayload) {
      return [NBD_EINVAL, `request of ${req.length} bytes exceeds the maximum block size ${this.o.maxPayload}`];
    }
    return null;
  }

  /** Reply once `op` settles; the request counts as in flight meanwhile. */
  private track(req: NbdRequest, bytes: number, op: Promise<void>, allowNotSup = false): void {
    this.begin(bytes);
    op.then(
      () => {
        this.o.writer.ok(req);
        this.complete(bytes);
      },
      (err: unknown) => this.fail(req, bytes, err, allowNotSup),
    );
  }

  private begin(bytes: number): void {
    this.inFlight++;
    this.inFlightBytes += bytes;
  }

  private fail(req: NbdRequest, bytes: number, err: unknown, allowNotSup = false): void {
    this.o.writer.error(req, nbdErrorOf(err, allowNotSup), nbdErrorMessage(err));
    this.complete(bytes);
  }

  private read(req: NbdRequest): void {
    const length = req.length;
    this.begin(length);
    const sparse =
      this.o.writer.structured &&
      !(req.flags & NBD_CMD_FLAG_DF) &&
      length >= SPARSE_READ_MIN &&
      this.o.device.capabilities.localBlockStatus &&
      this.o.device.capabilities.blockStatus;
    if (sparse) {
      this.o.device.blockStatus(req.offset, length).then(
        (extents) => this.readSparse(req, extents),
        (err: unknown) => this.fail(req, length, err),
      );
      return;
    }
    const buf = this.o.pool.acquire(length);
    this.o.device.read(req.offset, buf).then(
      () => {
        this.o.writer.readData(req, buf);
        this.complete(length);
      },
      (err: unknown) => {
        this.o.pool.release(buf);
        this.fail(req, length, err);
      },
    );
  }

  /** Read only the data parts of a range the device reports as partly zero. */
  private readSparse(req: NbdRequest, extents: readonly Extent[]): void {
    const segments = planSegments(extents, req.length);
    const dataSegments = segments.filter((s) => !s.hole);
    if (dataSegments.length === 0) {
      this.o.writer.readSegments(req, segments, null);
      this.complete(req.length);
      return;
    }
    const buf = this.o.pool.acquire(req.length);
    const reads = dataSegments.map((s) => this.o.device.read(req.offset + s.at, buf.subarray(s.at, s.at + s.length)));
    Promise.all(reads).then(
      () => {
        this.o.writer.readSegments(req, segments, buf);
        this.complete(req.length);
      },
      (err: unknown) => {
        // Let every read settle before the buffer can be reused.
        void Promise.allSettled(reads).then(() => this.o.pool.release(buf));
        this.fail(req, req.length, err);
      },
    );
  }

  private blockStatus(req: NbdRequest): void {
    this.begin(0);
    this.o.device.blockStatus(req.offset, req.length).then(
      (extents) => {
        const reqOne = (req.flags & NBD_CMD_FLAG_REQ_ONE) !== 0;
        this.o.writer.blockStatus(req, this.o.allocationContext, descriptorsOf(extents, req.length, reqOne));
        this.complete(0);
      },
      (err: unknown) => this.fail(req, 0, err),
    );
  }
}

function releaseHolds(req: NbdRequest): void {
  const holds = req.holds;
  if (!holds) return;
  req.holds = null;
  for (let i = 0; i < holds.length; i++) holds[i]!.release();
}
