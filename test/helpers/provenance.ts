/**
 * Zero copy shown by provenance, not by counters the code under test keeps itself: while a
 * watch runs, every public way JavaScript moves bytes between buffers (Buffer#copy,
 * Buffer.concat, Uint8Array#set, Buffer.from of a buffer) is wrapped and attributed to the
 * code that called it, and every buffer given to a socket's write() is recorded, so a test
 * can check that the buffer a device filled is the very memory the socket sent.
 *
 * Node's own internals use primordials captured at start-up, so a copy is counted once, at
 * the public call that asked for it.
 */
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import type { BufferPool } from '../../fabric/buffers.js';
import { ByteQueue } from '../../fabric/byte-queue.js';
import { Layer } from '../../fabric/layer.js';
import type { Extent, WriteOptions } from '../../fabric/device.js';

export interface Move {
  readonly via: 'Buffer#copy' | 'Buffer.concat' | 'Uint8Array#set' | 'Buffer.from';
  readonly bytes: number;
  /** The first stack frame in blockgate's own code (fabric/ or gateway/), if any. */
  readonly site: string | undefined;
  readonly stack: string;
}

/** The first frame of the stack that lies in the code under test, or undefined. */
function siteOf(stack: string | undefined): string | undefined {
  for (const line of (stack ?? '').split('\n').slice(2)) {
    if (/[/\\](fabric|gateway)[/\\]/.test(line) && !/[/\\]test[/\\]/.test(line)) return line.trim();
  }
  return undefined;
}

export class CopyWatch {
  readonly moves: Move[] = [];
  /** Buffers handed to net.Socket#write while watching. */
  readonly written: Buffer[] = [];
  private undo: (() => void)[] = [];

  start(): this {
    const record = (via: Move['via'], bytes: number) => {
      if (bytes <= 0) return;
      const stack = new Error().stack ?? '';
      this.moves.push({ via, bytes, site: siteOf(stack), stack });
    };
    const proto = Buffer.prototype;
    const copy = proto.copy;
    proto.copy = function (this: Buffer, target: Uint8Array, targetStart = 0, sourceStart = 0, sourceEnd = this.length) {
      const end = Math.min(sourceEnd, this.length);
      record('Buffer#copy', Math.max(0, Math.min(end - sourceStart, target.length - targetStart)));
      return copy.call(this, target, targetStart, sourceStart, sourceEnd);
    };
    this.undo.push(() => (proto.copy = copy));

    const concat = Buffer.concat;
    Buffer.concat = function (list: readonly Uint8Array[], totalLength?: number) {
      const total = list.reduce((n, b) => n + b.length, 0);
      record('Buffer.concat', totalLength === undefined ? total : Math.min(total, totalLength));
      return concat.call(Buffer, list, totalLength);
    } as typeof Buffer.concat;
    this.undo.push(() => (Buffer.concat = concat));

    const set = Uint8Array.prototype.set;
    Uint8Array.prototype.set = function (this: Uint8Array, array: ArrayLike<number>, offset?: number) {
      record('Uint8Array#set', array.length);
      return set.call(this, array, offset);
    };
    this.undo.push(() => (Uint8Array.prototype.set = set));

    const from = Buffer.from;
    Buffer.from = function (value: unknown, ...rest: unknown[]) {
      if (ArrayBuffer.isView(value)) record('Buffer.from', (value as Uint8Array).byteLength);
      return (from as (...a: unknown[]) => Buffer).call(Buffer, value, ...rest);
    } as typeof Buffer.from;
    this.undo.push(() => (Buffer.from = from));

    const write = net.Socket.prototype.write;
    const written = this.written;
    net.Socket.prototype.write = function (this: net.Socket, chunk: unknown, ...rest: unknown[]) {
      if (Buffer.isBuffer(chunk)) written.push(chunk);
      return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof write;
    this.undo.push(() => (net.Socket.prototype.write = write));
    return this;
  }

  stop(): void {
    for (const u of this.undo.reverse()) u();
    this.undo = [];
  }

  /** Moves made by blockgate's own code (fabric/, gateway/). */
  get ours(): Move[] {
    return this.moves.filter((m) => m.site !== undefined);
  }

  /**
   * Moves made by blockgate's own code on the request path: outside the code that runs
   * only while a connection negotiates (files matched by `negotiation`).
   */
  onRequestPath(negotiation: RegExp): Move[] {
    return this.ours.filter((m) => !negotiation.test(m.stack));
  }

  /** What blockgate moved, as lines for t.comment (the first few request-path moves named). */
  summary(negotiation: RegExp): string[] {
    const path = this.onRequestPath(negotiation);
    const bytes = path.reduce((n, m) => n + m.bytes, 0);
    return [
      `moves by blockgate: ${this.ours.length}, ${path.length} on the request path (${bytes} bytes)`,
      ...path.slice(0, 5).map((m) => `  ${m.via} ${m.bytes} B at ${m.site}`),
    ];
  }

  /** Whether [view.byteOffset, +length) of view's memory went to a socket, possibly in pieces. */
  sent(view: Uint8Array): boolean {
    const start = view.byteOffset;
    const end = start + view.byteLength;
    const pieces = this.written
      .filter((w) => w.buffer === view.buffer && w.byteOffset < end && w.byteOffset + w.byteLength > start)
      .map((w) => [w.byteOffset, w.byteOffset + w.byteLength] as const)
      .sort((a, b) => a[0] - b[0]);
    let covered = start;
    for (const [s, e] of pieces) {
      if (s > covered) return false;
      covered = Math.max(covered, e);
    }
    return covered >= end;
  }
}

/** A pool that remembers the memory it handed out, to tell receive arenas from anything else. */
export function trackPool(pool: BufferPool): Set<ArrayBufferLike> {
  const handedOut = new Set<ArrayBufferLike>();
  const acquire = pool.acquire.bind(pool);
  pool.acquire = (length: number) => {
    const b = acquire(length);
    handedOut.add(b.buffer);
    return b;
  };
  return handedOut;
}

/** The byte every block of a PatternDevice holds: a function of the block's index. */
export const patternByte = (offset: number, block = 512) => ((Math.floor(offset / block) * 7 + 1) & 0xff) || 1;

/**
 * A device that moves no bytes itself: reads fill each block with its pattern byte (fill is
 * not a move), writes check each block in place against the pattern. It records the
 * buffers it filled and the write slices it got, for provenance checks.
 */
export class PatternDevice extends Layer {
  readonly filled: Buffer[] = [];
  readonly writeSlices: Buffer[] = [];
  readonly badWrites: string[] = [];
  recording = false;
  readonly block = 512;

  override async read(offset: number, target: Buffer): Promise<void> {
    for (let at = 0; at < target.length; at += this.block) {
      target.fill(patternByte(offset + at, this.block), at, Math.min(target.length, at + this.block));
    }
    if (this.recording) this.filled.push(target);
  }

  /** All data, so that reads are never answered with holes instead of reaching read(). */
  override async blockStatus(_offset: number, length: number): Promise<Extent[]> {
    return [{ length, hole: false, zero: false }];
  }

  override async write(offset: number, data: readonly Buffer[], _options?: WriteOptions): Promise<void> {
    let pos = offset;
    for (const slice of data) {
      for (let i = 0; i < slice.length; i++) {
        if (slice[i] !== patternByte(pos + i, this.block)) {
          this.badWrites.push(`byte ${pos + i}: 0x${slice[i]!.toString(16)}`);
          break;
        }
      }
      pos += slice.length;
      if (this.recording) this.writeSlices.push(slice);
    }
  }
}

/** PatternDevice's pattern over `size` bytes, written to `path` for clients to send; returned to compare. */
export async function patternFile(path: string, size: number, block = 512): Promise<Buffer> {
  const b = Buffer.alloc(size);
  for (let at = 0; at < size; at += block) b.fill(patternByte(at, block), at, at + block);
  await writeFile(path, b);
  return b;
}

/**
 * Watches every chunk the servers in this process queue (ByteQueue#push): `chunks` lists
 * their lengths, and `onPush`, when set, runs after each (a client waits on it to cut its
 * bytes where it wants the server's reads to cut them). `restore()` undoes the hook.
 */
export function watchQueuedChunks(): { chunks: number[]; onPush: (() => void) | null; restore(): void } {
  const push = ByteQueue.prototype.push;
  const watch = {
    chunks: [] as number[],
    onPush: null as (() => void) | null,
    restore: () => void (ByteQueue.prototype.push = push),
  };
  ByteQueue.prototype.push = function (this: ByteQueue, ...args: Parameters<ByteQueue['push']>) {
    watch.chunks.push(args[0].length);
    push.apply(this, args);
    watch.onPush?.();
  };
  return watch;
}
