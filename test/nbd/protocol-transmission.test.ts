import t, { type Test } from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { Layer } from '../../fabric/layer.js';
import { BlockError } from '../../fabric/errors.js';
import {
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
  NBD_EIO,
  NBD_ENOSPC,
  NBD_EPERM,
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_CACHE,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
} from '../helpers/nbd-spec.js';
import { RawNbdClient, startNbdServer, stillServes } from '../helpers/nbd.js';

const MiB = 1 << 20;

/** Holds reads of offset 0 until released; reads elsewhere pass straight through. */
class GatedReads extends Layer {
  release!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.release = resolve));
  override async read(offset: number, target: Buffer): Promise<void> {
    if (offset === 0) await this.gate;
    return super.read(offset, target);
  }
}

/** Fails every read at or past 1 MiB with EIO. */
class FailingReads extends Layer {
  override async read(offset: number, target: Buffer): Promise<void> {
    if (offset >= MiB) throw new BlockError('EIO', 'injected media error');
    return super.read(offset, target);
  }
}

/** A device whose block status would cost a round trip to another server (like an nbd backend). */
class RemoteStatus extends Layer {
  lookups = 0;
  override get capabilities() {
    return { ...this.next.capabilities, localBlockStatus: false };
  }
  override blockStatus(offset: number, length: number) {
    this.lookups++;
    return super.blockStatus(offset, length);
  }
}

const remoteStatus = new RemoteStatus(new MemoryBackend({ name: 'tx-remote', size: 2 * MiB }), 'tx-remote');
const gated = new GatedReads(new MemoryBackend({ name: 'tx-gated', size: 4 * MiB }), 'tx-gated');
const nbd = await startNbdServer([
  { name: 'disk', device: new MemoryBackend({ name: 'tx-disk', size: 8 * MiB }) },
  { name: 'ro', device: new MemoryBackend({ name: 'tx-ro', size: MiB }), readOnly: true },
  { name: 'gated', device: gated },
  { name: 'remote', device: remoteStatus },
  { name: 'failing', device: new FailingReads(new MemoryBackend({ name: 'tx-failing', size: 2 * MiB }), 'tx-failing') },
]);
t.teardown(() => nbd.stop());
const tcp = { port: nbd.port };

async function connect(t: Test, name: string, structured = false) {
  const c = await RawNbdClient.open(tcp);
  t.teardown(() => c.destroy());
  const info = await c.go(name, { structured });
  return { c, ...info };
}

t.test('transmission flags follow the device capabilities', async (t) => {
  const { flags } = await connect(t, 'disk');
  const expected =
    NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
    NBD_FLAG_CAN_MULTI_CONN | NBD_FLAG_SEND_CACHE | NBD_FLAG_SEND_FAST_ZERO;
  t.equal(flags, expected, 'no DF without structured replies');
  const ro = await connect(t, 'ro', true);
  t.ok(ro.flags & NBD_FLAG_READ_ONLY);
  t.notOk(ro.flags & (NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES), 'no trim/zero on read-only');
  t.ok(ro.flags & NBD_FLAG_SEND_DF);
});

t.test('simple replies: write, read back, flush, trim, zeroes, cache', async (t) => {
  const { c } = await connect(t, 'disk');
  const data = Buffer.alloc(8192, 0x5a);
  c.request(NBD_CMD_WRITE, { cookie: 0x0102030405060708n, offset: 4096, payload: data, flags: NBD_CMD_FLAG_FUA });
  const w = await c.readSimple();
  t.same([w.error, w.cookie], [0, 0x0102030405060708n], 'cookie echoed verbatim');
  c.request(NBD_CMD_READ, { cookie: 2n, offset: 4096, length: 8192 });
  t.same((await c.readSimple(8192)).payload, data);
  c.request(NBD_CMD_FLUSH, { cookie: 3n });
  t.equal((await c.readSimple()).error, 0);
  c.request(NBD_CMD_TRIM, { cookie: 4n, offset: 4096, length: 4096 });
  t.equal((await c.readSimple()).error, 0);
  c.request(NBD_CMD_WRITE_ZEROES, { cookie: 5n, offset: 8192, length: 4096, flags: NBD_CMD_FLAG_NO_HOLE });
  t.equal((await c.readSimple()).error, 0);
  c.request(NBD_CMD_READ, { cookie: 6n, offset: 4096, length: 8192 });
  t.ok((await c.readSimple(8192)).payload.every((b) => b === 0), 'trimmed and zeroed ranges read as zero');
  c.request(NBD_CMD_CACHE, { cookie: 7n, offset: 0, length: 65536 });
  t.equal((await c.readSimple()).error, 0);
  c.request(NBD_CMD_WRITE_ZEROES, { cookie: 8n, offset: 0, length: 4096, flags: NBD_CMD_FLAG_FAST_ZERO });
  t.equal((await c.readSimple()).error, 0, 'memory zeroing is fast');
});

t.test('invalid requests get the errors the spec names', async (t) => {
  const { c } = await connect(t, 'disk');
  const cases: Array<[string, number, Parameters<RawNbdClient['request']>[1], number]> = [
    ['unknown command', 42, {}, NBD_EINVAL],
    ['unknown flag', NBD_CMD_READ, { length: 512, flags: 1 << 9 }, NBD_EINVAL],
    ['DF without structured replies', NBD_CMD_READ, { length: 512, flags: NBD_CMD_FLAG_DF }, NBD_EINVAL],
    ['NO_HOLE on a read', NBD_CMD_READ, { length: 512, flags: NBD_CMD_FLAG_NO_HOLE }, NBD_EINVAL],
    ['REQ_ONE on a trim', NBD_CMD_TRIM, { length: 512, flags: NBD_CMD_FLAG_REQ_ONE }, NBD_EINVAL],
    ['flush with a length', NBD_CMD_FLUSH, { length: 512 }, NBD_EINVAL],
    ['read past the end', NBD_CMD_READ, { offset: 8 * MiB - 512, length: 1024 }, NBD_EINVAL],
    ['read beyond 2^53', NBD_CMD_READ, { offset: 2 ** 60, length: 512 }, NBD_EINVAL],
    ['zeroes past the end', NBD_CMD_WRITE_ZEROES, { offset: 8 * MiB, length: 512 }, NBD_ENOSPC],
    ['trim past the end', NBD_CMD_TRIM, { offset: 8 * MiB, length: 512 }, NBD_EINVAL],
    ['zero-length read', NBD_CMD_READ, { offset: 0, length: 0 }, NBD_EINVAL],
    ['read above the maximum block size', NBD_CMD_READ, { length: 64 * MiB }, NBD_EINVAL],
    ['cache above the maximum block size', NBD_CMD_CACHE, { length: 64 * MiB }, NBD_EINVAL],
  ];
  let cookie = 100n;
  for (const [what, type, opts, errno] of cases) {
    c.request(type, { ...opts, cookie: ++cookie });
    const r = await c.readSimple();
    t.same([r.error, r.cookie], [errno, cookie], what);
  }
  c.request(NBD_CMD_WRITE, { cookie: 1n, offset: 8 * MiB - 512, payload: Buffer.alloc(1024) });
  t.equal((await c.readSimple()).error, NBD_ENOSPC, 'write past the end is ENOSPC');
  t.ok(await stillServes(tcp));
});

t.test('an oversized write is refused and its payload skipped, not buffered', async (t) => {
  const { c } = await connect(t, 'disk');
  const big = 33 * MiB; // above the 32 MiB maximum block size
  c.request(NBD_CMD_WRITE, { cookie: 11n, offset: 0, length: big });
  // The error may come before the payload is even sent.
  const r = await c.readSimple();
  t.same([r.error, r.cookie], [NBD_EINVAL, 11n]);
  const chunk = Buffer.alloc(MiB, 0xee);
  for (let sent = 0; sent < big; sent += MiB) c.write(chunk);
  // The connection stays in sync: the next request is parsed after the skipped bytes.
  c.request(NBD_CMD_READ, { cookie: 12n, offset: 0, length: 4096 });
  const next = await c.readSimple(4096);
  t.same([next.error, next.cookie], [0, 12n]);
  t.notOk(next.payload.includes(0xee), 'the skipped payload was not written');
});

t.test('read-only export refuses writes with EPERM', async (t) => {
  const { c } = await connect(t, 'ro');
  c.request(NBD_CMD_WRITE, { cookie: 1n, payload: Buffer.alloc(512) });
  t.equal((await c.readSimple()).error, NBD_EPERM);
  c.request(NBD_CMD_TRIM, { cookie: 2n, length: 512 });
  t.equal((await c.readSimple()).error, NBD_EPERM);
  c.request(NBD_CMD_WRITE_ZEROES, { cookie: 3n, length: 512 });
  t.equal((await c.readSimple()).error, NBD_EPERM);
  c.request(NBD_CMD_READ, { cookie: 4n, length: 512 });
  t.equal((await c.readSimple(512)).error, 0, 'reads still work');
});

t.test('bad request magic drops only that connection', async (t) => {
  const { c } = await connect(t, 'disk');
  c.write(Buffer.alloc(28, 0x41));
  await c.closed;
  t.ok(await stillServes(tcp));
});

t.test('structured read: one OFFSET_DATA chunk flagged DONE', async (t) => {
  const { c } = await connect(t, 'disk', true);
  const data = Buffer.alloc(4096, 0x33);
  c.request(NBD_CMD_WRITE, { cookie: 1n, offset: 2 * MiB, payload: data });
  t.equal((await c.readReply()).error, 0);
  c.request(NBD_CMD_READ, { cookie: 0xabcdn, offset: 2 * MiB, length: 4096, flags: NBD_CMD_FLAG_DF });
  const raw = await c.read(20 + 8 + 4096);
  t.equal(raw.readUInt32BE(0), 0x668e33ef, 'structured magic');
  t.equal(raw.readUInt16BE(4), NBD_REPLY_FLAG_DONE);
  t.equal(raw.readUInt16BE(6), NBD_REPLY_TYPE_OFFSET_DATA);
  t.equal(raw.readBigUInt64BE(8), 0xabcdn);
  t.equal(raw.readUInt32BE(16), 8 + 4096, 'length covers offset and data');
  t.equal(raw.readBigUInt64BE(20), BigInt(2 * MiB));
  t.same(raw.subarray(28), data);
});

t.test('structured errors: ERROR chunk with a message, also for bad reads', async (t) => {
  const { c } = await connect(t, 'disk', true);
  c.request(NBD_CMD_READ, { cookie: 5n, offset: 8 * MiB, length: 512 });
  const [err] = await c.readStructured();
  t.equal(err!.type, NBD_REPLY_TYPE_ERROR);
  t.equal(err!.flags, NBD_REPLY_FLAG_DONE);
  t.equal(err!.payload.readUInt32BE(0), NBD_EINVAL);
  const msgLen = err!.payload.readUInt16BE(4);
  t.equal(err!.payload.length, 6 + msgLen);
  t.ok(msgLen > 0, 'a message for the human');
  c.request(NBD_CMD_READ, { cookie: 6n, length: 512, flags: 1 << 9 });
  const [flagErr] = await c.readStructured();
  t.equal(flagErr!.type, NBD_REPLY_TYPE_ERROR, 'reads never get simple replies once structured');
});

t.test('device errors map to NBD errors', async (t) => {
  const simple = await connect(t, 'failing');
  simple.c.request(NBD_CMD_READ, { cookie: 1n, offset: MiB, length: 4096 });
  const r = await simple.c.readSimple();
  t.same([r.error, simple.c.pending], [NBD_EIO, 0], 'simple error reply carries no payload');
  const structured = await connect(t, 'failing', true);
  structured.c.request(NBD_CMD_READ, { cookie: 2n, offset: MiB, length: 4096 });
  const [chunk] = await structured.c.readStructured();
  t.equal(chunk!.payload.readUInt32BE(0), NBD_EIO);
  t.match(chunk!.payload.toString('utf8', 6), /injected media error/);
});

t.test('no block-status look-up before reads where it would cost a round trip', async (t) => {
  const { c } = await connect(t, 'remote', true);
  c.request(NBD_CMD_READ, { cookie: 1n, offset: 0, length: MiB });
  const chunks = await c.readStructured();
  t.same(chunks.map((ch) => [ch.type, ch.payload.length]), [[NBD_REPLY_TYPE_OFFSET_DATA, 8 + MiB]], 'one data chunk, zeroes included');
  t.equal(remoteStatus.lookups, 0, 'the device was not asked for block status');
});

t.test('sparse reads send holes as OFFSET_HOLE chunks', async (t) => {
  const { c } = await connect(t, 'disk', true);
  const base = 4 * MiB;
  c.request(NBD_CMD_WRITE_ZEROES, { cookie: 1n, offset: base, length: MiB });
  t.equal((await c.readReply()).error, 0);
  c.request(NBD_CMD_WRITE, { cookie: 2n, offset: base + 256 * 1024, payload: Buffer.alloc(65536, 9) });
  t.equal((await c.readReply()).error, 0);
  c.request(NBD_CMD_READ, { cookie: 3n, offset: base, length: MiB });
  const chunks = await c.readStructured();
  const layout = chunks.map((ch) => [
    ch.type,
    Number(ch.payload.readBigUInt64BE(0)) - base,
    ch.type === NBD_REPLY_TYPE_OFFSET_HOLE ? ch.payload.readUInt32BE(8) : ch.payload.length - 8,
    ch.flags,
  ]);
  t.same(layout, [
    [NBD_REPLY_TYPE_OFFSET_HOLE, 0, 256 * 1024, 0],
    [NBD_REPLY_TYPE_OFFSET_DATA, 256 * 1024, 65536, 0],
    [NBD_REPLY_TYPE_OFFSET_HOLE, 320 * 1024, MiB - 320 * 1024, NBD_REPLY_FLAG_DONE],
  ]);
  t.ok(chunks[1]!.payload.subarray(8).every((b) => b === 9));
  c.request(NBD_CMD_READ, { cookie: 4n, offset: base, length: MiB, flags: NBD_CMD_FLAG_DF });
  const df = await c.readStructured();
  t.same(
    df.map((ch) => [ch.type, ch.payload.length]),
    [[NBD_REPLY_TYPE_OFFSET_DATA, 8 + MiB]],
    'DF: one data chunk with the zeroes present',
  );
});

t.test('replies come out of order when an earlier request is slow', async (t) => {
  const { c } = await connect(t, 'gated');
  c.request(NBD_CMD_READ, { cookie: 1n, offset: 0, length: 4096 });
  c.request(NBD_CMD_READ, { cookie: 2n, offset: 65536, length: 4096 });
  c.request(NBD_CMD_WRITE, { cookie: 3n, offset: MiB, payload: Buffer.alloc(4096, 1) });
  const early: bigint[] = [];
  for (let i = 0; i < 2; i++) {
    const r = await c.readReply();
    if (r.cookie === 2n) await c.read(4096);
    early.push(r.cookie);
  }
  t.same(early.sort(), [2n, 3n], 'later requests answered first');
  gated.release();
  const last = await c.readSimple(4096);
  t.equal(last.cookie, 1n);
});

t.test('DISC waits for in-flight requests, then closes', async (t) => {
  const { c } = await connect(t, 'disk');
  for (let i = 0; i < 16; i++) c.request(NBD_CMD_READ, { cookie: BigInt(i), offset: i * 4096, length: 4096 });
  c.request(NBD_CMD_DISC, { cookie: 99n });
  const cookies = new Set<bigint>();
  for (let i = 0; i < 16; i++) cookies.add((await c.readSimple(4096)).cookie);
  t.equal(cookies.size, 16, 'every request before DISC was answered');
  await c.closed;
  t.equal(c.pending, 0, 'no reply to DISC');
  while (nbd.server.connectionCount > 0) await new Promise((r) => setTimeout(r, 10));
  t.pass('the server released the connection');
});
