import { createRequire } from 'node:module';
import { logger } from '../log.js';
import { errnoError } from './linux-fs.js';

/**
 * Buffered writes in batches: the writes a file backend is asked for during one turn of
 * the event loop go to the thread pool a few at a time — one io_submit(2) of Linux AIO per
 * batch, which for a file opened without O_DIRECT performs each write in turn before it
 * returns — rather than one pool round trip (a queue, a thread wake-up, a completion
 * wake-up of the loop) per 4 KiB. The writes still never run on the event loop: they may
 * wait for dirty-page throttling or the journal. libaio (Debian's libaio1) is reached
 * through koffi; without it, `openAioWrites` returns undefined and writes go through
 * fs.writev one by one.
 *
 * Batches are small and several run at once (AIO_BATCH, PARALLEL): a batch answers none of its
 * writes before it has done all of them, so one batch of a whole turn (32 writes at QD32)
 * held every reply until the last write and left the client idle meanwhile. Measured on
 * ext4 (page cache), 4 KiB random writes at QD32, the build before (one batch per turn, 2
 * at once) and this one as two servers in one run, alternating, medians of 3, once in each
 * start order (the server started first ran slower whatever its build: the same build
 * against itself differed 1.6-1.7x by order alone), loaded machine: after ÷ before 2.55
 * and 0.89 by order, 1.51x their geometric mean (README, Benchmark).
 */

const IOCB_CMD_PWRITEV = 8;
const IOCB_SIZE = 64;
const EVENT_SIZE = 32;
/** Writes per io_submit at most. */
export const AIO_BATCH = 4;
/**
 * io_submit jobs in the pool at once per file: a write that waits does not hold up all
 * others, and replies leave as each small batch is done. (libuv's pool has 4 threads.)
 */
const PARALLEL = 4;

interface Pending {
  readonly buffers: readonly Buffer[];
  readonly position: number;
  readonly resolve: (written: number) => void;
  readonly reject: (err: Error) => void;
}

interface Libaio {
  ioSetup(maxEvents: number, ctx: Buffer): number;
  ioSubmitAsync(ctx: bigint, count: number, iocbs: Buffer, done: (result: number) => void): void;
  ioGetEvents(ctx: bigint, min: number, max: number, events: Buffer, timeout: Buffer): number;
  ioGetEventsAsync(ctx: bigint, min: number, max: number, events: Buffer, done: (result: number) => void): void;
  ioDestroy(ctx: bigint): number;
  address(buffer: Buffer): bigint;
}

const log = logger('aio-writes');

function load(): Libaio | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const lib = koffi.load('libaio.so.1');
    type Callable = ((...a: unknown[]) => number) & { async: (...a: unknown[]) => void };
    // libaio returns -errno itself (errno is not used), so results survive a worker thread.
    const setup = lib.func('int io_setup(int maxevents, void *ctxp)') as Callable;
    const submit = lib.func('int io_submit(uint64_t ctx, long nr, void *iocbpp)') as Callable;
    const getevents = lib.func('int io_getevents(uint64_t ctx, long min_nr, long nr, void *events, void *timeout)') as Callable;
    const destroy = lib.func('int io_destroy(uint64_t ctx)') as Callable;
    const EIO = -5;
    return {
      ioSetup: (n, ctx) => setup(n, ctx),
      ioSubmitAsync: (ctx, count, iocbs, done) => submit.async(ctx, count, iocbs, (err: unknown, n: number) => done(err ? EIO : n)),
      ioGetEvents: (ctx, min, max, events, timeout) => getevents(ctx, min, max, events, timeout),
      ioGetEventsAsync: (ctx, min, max, events, done) => getevents.async(ctx, min, max, events, null, (err: unknown, n: number) => done(err ? EIO : n)),
      ioDestroy: (ctx) => destroy(ctx),
      address: (buffer) => koffi.address(buffer) as bigint,
    };
  } catch (err) {
    log.info({ err: (err as Error).message }, 'libaio unavailable: file writes go through the thread pool one by one');
    return undefined;
  }
}

let libaio: Libaio | undefined | null = null;

/**
 * One batch in flight: its own AIO context (so its completions are its own), iocbs, the
 * pointer array io_submit takes, and the iovecs.
 */
class Slot {
  private readonly iocbs = Buffer.alloc(AIO_BATCH * IOCB_SIZE);
  private readonly pointers = Buffer.alloc(AIO_BATCH * 8);
  private readonly events = Buffer.alloc(AIO_BATCH * EVENT_SIZE);
  private readonly noWait = Buffer.alloc(16);
  private iovecs = Buffer.alloc(AIO_BATCH * 16 * 4);
  private batch: Pending[] = [];
  private remaining = 0;
  busy = false;

  constructor(
    private readonly aio: Libaio,
    private readonly ctx: bigint,
    private readonly fd: number,
    /** The slot is free again; `unsent` were not taken by the kernel and go back to the queue. */
    private readonly onFree: (unsent: Pending[]) => void,
  ) {
    const base = aio.address(this.iocbs);
    for (let i = 0; i < AIO_BATCH; i++) this.pointers.writeBigUInt64LE(base + BigInt(i * IOCB_SIZE), i * 8);
  }

  submit(batch: Pending[]): void {
    this.busy = true;
    this.batch = batch;
    this.fill();
    this.aio.ioSubmitAsync(this.ctx, batch.length, this.pointers, (submitted) => this.submitted(submitted));
  }

  destroy(): void {
    this.aio.ioDestroy(this.ctx);
  }

  private fill(): void {
    const batch = this.batch;
    const slices = batch.reduce((n, p) => n + p.buffers.length, 0);
    if (this.iovecs.length < slices * 16) this.iovecs = Buffer.alloc(slices * 16);
    const iovBase = this.aio.address(this.iovecs);
    let iov = 0;
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      const o = i * IOCB_SIZE;
      this.iocbs.fill(0, o, o + IOCB_SIZE);
      this.iocbs.writeBigUInt64LE(BigInt(i), o); // aio_data: the index in this batch
      this.iocbs.writeUInt16LE(IOCB_CMD_PWRITEV, o + 16);
      this.iocbs.writeUInt32LE(this.fd, o + 20);
      this.iocbs.writeBigUInt64LE(iovBase + BigInt(iov * 16), o + 24);
      this.iocbs.writeBigUInt64LE(BigInt(p.buffers.length), o + 32);
      this.iocbs.writeBigInt64LE(BigInt(p.position), o + 40);
      for (const b of p.buffers) {
        this.iovecs.writeBigUInt64LE(this.aio.address(b), iov * 16);
        this.iovecs.writeBigUInt64LE(BigInt(b.length), iov * 16 + 8);
        iov++;
      }
    }
  }

  private submitted(submitted: number): void {
    if (submitted < 0) {
      const batch = this.batch;
      this.free([]);
      for (const p of batch) p.reject(errnoError(submitted, 'io_submit'));
      return;
    }
    this.remaining = submitted;
    // Buffered writes complete inside io_submit: their events are waiting already.
    while (this.remaining > 0) {
      const got = this.aio.ioGetEvents(this.ctx, 0, AIO_BATCH, this.events, this.noWait);
      if (got <= 0) break;
      this.settle(got);
    }
    if (this.remaining === 0) return this.free(this.batch.slice(submitted));
    // Some file systems finish later: wait for the rest on a worker, never on the loop.
    const wait = (): void =>
      this.aio.ioGetEventsAsync(this.ctx, this.remaining, AIO_BATCH, this.events, (got) => {
        if (got > 0) this.settle(got);
        if (this.remaining > 0) return wait();
        this.free(this.batch.slice(submitted));
      });
    wait();
  }

  private settle(got: number): void {
    for (let i = 0; i < got; i++) {
      const p = this.batch[Number(this.events.readBigUInt64LE(i * EVENT_SIZE))]!;
      const res = Number(this.events.readBigInt64LE(i * EVENT_SIZE + 16));
      if (res < 0) p.reject(errnoError(res, 'pwritev'));
      else p.resolve(res);
    }
    this.remaining -= got;
  }

  private free(unsent: Pending[]): void {
    this.busy = false;
    this.batch = [];
    this.onFree(unsent);
  }
}

/** Batched buffered writes to one descriptor. */
export class AioWrites {
  /** Writes submitted, and the io_submit calls that carried them. */
  readonly stats = { writes: 0, batches: 0 };
  private queue: Pending[] = [];
  private scheduled = false;
  private closed = false;

  private constructor(private readonly slots: Slot[]) {}

  static open(fd: number): AioWrites | undefined {
    if (libaio === null) libaio = load();
    const aio = libaio;
    if (!aio) return undefined;
    const contexts: bigint[] = [];
    for (let i = 0; i < PARALLEL; i++) {
      const ctx = Buffer.alloc(8);
      const rc = aio.ioSetup(AIO_BATCH, ctx);
      if (rc !== 0) {
        for (const c of contexts) aio.ioDestroy(c);
        log.info({ errno: -rc }, 'io_setup failed: file writes go through the thread pool one by one');
        return undefined;
      }
      contexts.push(ctx.readBigUInt64LE(0));
    }
    let writes: AioWrites;
    const slots = contexts.map((ctx) => new Slot(aio, ctx, fd, (unsent) => writes.freed(unsent)));
    writes = new AioWrites(slots);
    return writes;
  }

  /** pwritev of `buffers` at `position`, in the next batch; resolves with the bytes written. */
  pwritev(buffers: readonly Buffer[], position: number): Promise<number> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('AIO writes closed'));
      this.queue.push({ buffers, position, resolve, reject });
      this.schedule();
    });
  }

  /** Release the AIO contexts once nothing is in flight (the owner waits for its requests first). */
  close(): void {
    this.closed = true;
    if (!this.slots.some((s) => s.busy)) for (const s of this.slots) s.destroy();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.busy) continue;
      const batch = this.queue.splice(0, AIO_BATCH);
      this.stats.batches++;
      this.stats.writes += batch.length;
      slot.submit(batch);
    }
  };

  private freed(unsent: Pending[]): void {
    if (unsent.length > 0) this.queue.unshift(...unsent);
    if (this.closed && !this.slots.some((s) => s.busy)) for (const s of this.slots) s.destroy();
    else if (this.queue.length > 0) this.schedule();
  }
}
