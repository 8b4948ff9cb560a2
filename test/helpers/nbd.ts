import net from 'node:net';
import {
  IHAVEOPT,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_OPT_GO,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_INFO,
  NBD_REQUEST_MAGIC,
} from './nbd-spec.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlockDevice } from '../../fabric/device.js';
import { FabricSwitch } from '../../fabric/switch.js';
import { NbdServer, type NbdServerOptions } from '../../gateway/nbd/server.js';

export interface TestExport {
  name: string;
  device: BlockDevice;
  readOnly?: boolean;
  description?: string;
}

export interface RunningNbd {
  host: string;
  port: number;
  socketPath: string;
  fabric: FabricSwitch;
  server: NbdServer;
  /** nbd://127.0.0.1:PORT/NAME (default: the first export). */
  uri(exportName?: string): string;
  /** nbd+unix:///NAME?socket=PATH */
  unixUri(exportName?: string): string;
  stop(): Promise<void>;
}

/**
 * Server options every startNbdServer call uses unless it says otherwise: a test file that
 * sets `receive: 'data-events'` here runs other test files over the receive fallback.
 */
export const nbdServerDefaults: { receive?: NbdServerOptions['receive']; pool?: NbdServerOptions['pool'] } = {};

/** An NBD server on 127.0.0.1 (ephemeral port) and on a Unix socket in a fresh temp dir. */
export async function startNbdServer(exports: TestExport[], options: Partial<NbdServerOptions> = {}): Promise<RunningNbd> {
  const fabric = new FabricSwitch();
  for (const e of exports) {
    if (!fabric.device(e.device.name)) fabric.addDevice(e.device);
    fabric.addExport({ name: e.name, device: e.device.name, readOnly: e.readOnly, description: e.description });
  }
  const dir = await mkdtemp(join(tmpdir(), 'blockgate-nbd-'));
  const socketPath = join(dir, 'nbd.sock');
  const server = new NbdServer({ ...nbdServerDefaults, ...options, fabric, listen: [{ host: '127.0.0.1', port: 0 }, { socketPath }] });
  await server.start();
  const tcp = server.addresses().find((a): a is { host: string; port: number } => 'port' in a)!;
  const first = exports[0]?.name ?? '';
  let stopped = false;
  return {
    host: tcp.host,
    port: tcp.port,
    socketPath,
    fabric,
    server,
    uri: (name = first) => `nbd://127.0.0.1:${tcp.port}/${encodeURIComponent(name)}`,
    unixUri: (name = first) => `nbd+unix:///${encodeURIComponent(name)}?socket=${socketPath}`,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.stop({ drainMs: 1000 });
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// ---- a raw NBD client for protocol tests: bytes in, bytes out, nothing hidden ----------


export interface OptionReply {
  option: number;
  type: number;
  data: Buffer;
}

export interface ReplyChunk {
  magic: number;
  /** Simple replies: the error; structured: 0. */
  error: number;
  flags: number;
  type: number;
  cookie: bigint;
  payload: Buffer;
}

/** Drives a connection byte by byte; every read waits for exactly the bytes asked for. */
export class RawNbdClient {
  private buffered = Buffer.alloc(0);
  private waiting: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private ended = false;
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, d]);
      this.wake();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.ended = true;
        this.wake();
        resolve();
      }),
    );
  }

  static connect(target: { port: number; localAddress?: string } | { socketPath: string }): Promise<RawNbdClient> {
    return new Promise((resolve, reject) => {
      const socket =
        'port' in target
          ? net.connect({ host: '127.0.0.1', port: target.port, localAddress: target.localAddress })
          : net.connect({ path: target.socketPath });
      socket.once('connect', () => resolve(new RawNbdClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Connects, reads the greeting, sends client flags; returns the handshake flags. */
  static async open(
    target: { port: number; localAddress?: string } | { socketPath: string },
    clientFlags = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES,
  ): Promise<RawNbdClient> {
    const c = await RawNbdClient.connect(target);
    await c.read(18);
    c.u32(clientFlags);
    return c;
  }

  private wake(): void {
    const w = this.waiting;
    if (!w) return;
    if (this.buffered.length >= w.n) {
      this.waiting = null;
      const out = this.buffered.subarray(0, w.n);
      this.buffered = this.buffered.subarray(w.n);
      w.resolve(out);
    } else if (this.ended) {
      this.waiting = null;
      w.reject(new Error(`connection closed with ${this.buffered.length} of ${w.n} bytes`));
    }
  }

  read(n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.waiting = { n, resolve, reject };
      this.wake();
    });
  }

  /** Bytes received but not read yet. */
  get pending(): number {
    return this.buffered.length;
  }

  write(data: Buffer): void {
    this.socket.write(data);
  }

  u32(value: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(value >>> 0);
    this.write(b);
  }

  sendOption(option: number, data: Buffer = Buffer.alloc(0), lengthOverride?: number): void {
    const h = Buffer.alloc(16);
    h.writeBigUInt64BE(IHAVEOPT, 0);
    h.writeUInt32BE(option, 8);
    h.writeUInt32BE(lengthOverride ?? data.length, 12);
    this.write(Buffer.concat([h, data]));
  }

  async readOptionReply(): Promise<OptionReply> {
    const h = await this.read(20);
    const length = h.readUInt32BE(16);
    return { option: h.readUInt32BE(8), type: h.readUInt32BE(12), data: length ? await this.read(length) : Buffer.alloc(0) };
  }

  /** Replies up to and including the first that is not `intermediate` (e.g. NBD_REP_INFO). */
  async readOptionReplies(intermediate: number): Promise<OptionReply[]> {
    const out: OptionReply[] = [];
    for (;;) {
      const r = await this.readOptionReply();
      out.push(r);
      if (r.type !== intermediate) return out;
    }
  }

  /** Optionally negotiates structured replies and base:allocation, then GO. */
  async go(name: string, opts: { structured?: boolean; allocation?: boolean } = {}): Promise<{ size: bigint; flags: number }> {
    if (opts.structured) {
      this.sendOption(NBD_OPT_STRUCTURED_REPLY);
      const r = await this.readOptionReply();
      if (r.type !== NBD_REP_ACK) throw new Error(`structured reply refused: ${r.type}`);
    }
    if (opts.allocation) {
      this.sendOption(NBD_OPT_SET_META_CONTEXT, metaRequest(name, ['base:allocation']));
      const replies = await this.readOptionReplies(4 /* NBD_REP_META_CONTEXT */);
      if (replies[replies.length - 1]!.type !== NBD_REP_ACK) throw new Error('meta context refused');
    }
    this.sendOption(NBD_OPT_GO, infoRequest(name, []));
    const replies = await this.readOptionReplies(NBD_REP_INFO);
    const last = replies[replies.length - 1]!;
    if (last.type !== NBD_REP_ACK) throw new Error(`GO refused: 0x${last.type.toString(16)} ${last.data.toString()}`);
    const info = replies.find((r) => r.type === NBD_REP_INFO && r.data.readUInt16BE(0) === 0)!;
    return { size: info.data.readBigUInt64BE(2), flags: info.data.readUInt16BE(10) };
  }

  request(type: number, opts: { flags?: number; cookie?: bigint; offset?: number; length?: number; payload?: Buffer } = {}): void {
    const h = Buffer.alloc(28);
    h.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
    h.writeUInt16BE(opts.flags ?? 0, 4);
    h.writeUInt16BE(type, 6);
    h.writeBigUInt64BE(opts.cookie ?? 1n, 8);
    h.writeBigUInt64BE(BigInt(opts.offset ?? 0), 16);
    h.writeUInt32BE(opts.length ?? opts.payload?.length ?? 0, 24);
    this.write(opts.payload ? Buffer.concat([h, opts.payload]) : h);
  }

  /** A simple reply (16 bytes, plus `dataLength` bytes when it carries read data). */
  async readSimple(dataLength = 0): Promise<ReplyChunk> {
    const h = await this.read(16);
    const magic = h.readUInt32BE(0);
    if (magic !== 0x67446698) throw new Error(`expected simple reply magic, got 0x${magic.toString(16)}`);
    const error = h.readUInt32BE(4);
    const payload = error === 0 && dataLength > 0 ? await this.read(dataLength) : Buffer.alloc(0);
    return { magic, error, flags: 0, type: 0, cookie: h.readBigUInt64BE(8), payload };
  }

  /** One reply of either kind; a simple reply must carry no data here. */
  async readReply(): Promise<ReplyChunk> {
    const m = await this.read(4);
    const magic = m.readUInt32BE(0);
    if (magic === 0x67446698) {
      const rest = await this.read(12);
      return { magic, error: rest.readUInt32BE(0), flags: 0, type: 0, cookie: rest.readBigUInt64BE(4), payload: Buffer.alloc(0) };
    }
    if (magic !== 0x668e33ef) throw new Error(`bad reply magic 0x${magic.toString(16)}`);
    const rest = await this.read(16);
    const length = rest.readUInt32BE(12);
    return {
      magic,
      error: 0,
      flags: rest.readUInt16BE(0),
      type: rest.readUInt16BE(2),
      cookie: rest.readBigUInt64BE(4),
      payload: length ? await this.read(length) : Buffer.alloc(0),
    };
  }

  /** Structured chunks of one reply, through the one flagged DONE. */
  async readStructured(): Promise<ReplyChunk[]> {
    const out: ReplyChunk[] = [];
    for (;;) {
      const c = await this.readReply();
      out.push(c);
      if (c.magic !== 0x668e33ef || c.flags & 1) return out;
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export function nbdString(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

/** INFO/GO option data. */
export function infoRequest(name: string, infos: number[]): Buffer {
  const n = Buffer.alloc(2 + 2 * infos.length);
  n.writeUInt16BE(infos.length, 0);
  infos.forEach((t, i) => n.writeUInt16BE(t, 2 + 2 * i));
  return Buffer.concat([nbdString(name), n]);
}

/** LIST/SET_META_CONTEXT option data. */
export function metaRequest(name: string, queries: string[]): Buffer {
  const count = Buffer.alloc(4);
  count.writeUInt32BE(queries.length);
  return Buffer.concat([nbdString(name), count, ...queries.map(nbdString)]);
}

/** Proves the server still serves: a fresh client negotiates and reads 512 bytes. */
export async function stillServes(target: { port: number; localAddress?: string } | { socketPath: string }, exportName = ''): Promise<boolean> {
  const c = await RawNbdClient.open(target);
  try {
    await c.go(exportName);
    c.request(0 /* NBD_CMD_READ */, { cookie: 77n, offset: 0, length: 512 });
    const r = await c.readSimple(512);
    return r.error === 0 && r.cookie === 77n && r.payload.length === 512;
  } finally {
    c.destroy();
  }
}
