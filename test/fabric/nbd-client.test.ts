import t, { type Test } from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NbdClient, type NbdClientOptions } from '../../fabric/backends/nbd-client/client.js';
import { parseNbdAddress } from '../../fabric/backends/nbd-client/address.js';
import { copyStats, resetCopyStats } from '../../fabric/copies.js';
import { BlockError } from '../../fabric/errors.js';
import { startNbdkit, type NbdkitOptions } from '../helpers/nbdkit-server.js';

const KiB = 1024;
const MiB = 1024 * KiB;

function pattern(length: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (i * 131 + seed * 7 + (i >> 9)) & 0xff;
  return b;
}

async function client(t: Tap, server: { address: string }, extra: Partial<NbdClientOptions> = {}): Promise<NbdClient> {
  const c = await NbdClient.open({ name: 'remote', address: parseNbdAddress(server.address)!, ...extra });
  t.teardown(() => c.close());
  return c;
}
type Tap = Test;

async function nbdkit(t: Tap, options: NbdkitOptions) {
  return startNbdkit(t, options);
}

async function rejectsWith(t: Tap, p: Promise<unknown>, code: string, what: string) {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof BlockError, `${what}: a BlockError`);
  t.equal((err as BlockError | undefined)?.code, code, `${what}: ${code}`);
}

t.test('every operation against nbdkit memory over a Unix socket', async (t) => {
  const server = await nbdkit(t, { plugin: ['memory', 'size=64M'] });
  const dev = await client(t, server);
  t.equal(dev.size, 64 * MiB);
  t.ok(dev.capabilities.flush && dev.capabilities.fua && dev.capabilities.trim && dev.capabilities.writeZeroes);
  t.ok(dev.capabilities.blockStatus, 'base:allocation negotiated');
  t.ok(dev.capabilities.multiConn, 'memory plugin allows multi-conn');
  t.notOk(dev.capabilities.readOnly);

  const data = pattern(300 * KiB, 1);
  await dev.write(1 * MiB, [data.subarray(0, 7), data.subarray(7, 100_000), data.subarray(100_000)]);
  const back = Buffer.alloc(data.length);
  await dev.read(1 * MiB, back);
  t.ok(back.equals(data), 'slices written read back whole');

  await dev.write(0, [pattern(4096, 2)], { fua: true });
  await dev.flush();
  const small = Buffer.alloc(4096);
  await dev.read(0, small);
  t.ok(small.equals(pattern(4096, 2)), 'FUA write read back');

  // Holes: nothing written at 8 MiB, data at 1 MiB.
  const extents = await dev.blockStatus(8 * MiB, 1 * MiB);
  t.ok(extents.length > 0 && extents[0]!.hole && extents[0]!.zero, 'unwritten range is a hole');
  t.ok(extents.reduce((n, e) => n + e.length, 0) <= 1 * MiB, 'extents clipped to the request');
  const dataExtents = await dev.blockStatus(1 * MiB, 64 * KiB);
  t.equal(dataExtents[0]!.hole, false, 'written range is data');

  await dev.trim(1 * MiB, 64 * KiB);
  const trimmed = Buffer.alloc(64 * KiB, 0xff);
  await dev.read(1 * MiB, trimmed);
  t.ok(trimmed.every((x) => x === 0), 'trimmed range reads zero (memory plugin)');

  await dev.writeZeroes(1 * MiB + 64 * KiB, 64 * KiB, { noHole: true });
  await dev.writeZeroes(1 * MiB + 128 * KiB, 64 * KiB, { fua: true });
  const zeroed = Buffer.alloc(128 * KiB, 0xff);
  await dev.read(1 * MiB + 64 * KiB, zeroed);
  t.ok(zeroed.every((x) => x === 0), 'zeroed ranges read zero');
  const rest = Buffer.alloc(300 * KiB - 192 * KiB);
  await dev.read(1 * MiB + 192 * KiB, rest);
  t.ok(rest.equals(data.subarray(192 * KiB)), 'neighbouring data intact');

  await dev.cache(0, 1 * MiB);
  t.equal(dev.status().state, 'optimal');
  await rejectsWith(t, dev.read(64 * MiB - 512, Buffer.alloc(4096)), 'EINVAL', 'read past the end');
  await rejectsWith(t, dev.write(64 * MiB - 512, [Buffer.alloc(4096)]), 'ENOSPC', 'write past the end');
});

t.test('many requests in flight complete out of order, large reads land in place', async (t) => {
  const server = await nbdkit(t, { plugin: ['memory', 'size=64M'], filters: ['delay'], args: ['rdelay=0'] });
  const dev = await client(t, server, { connections: 4 });
  t.equal((dev.status().detail as { connections: number }).connections, 4, 'four connections under multi-conn');
  const chunks = Array.from({ length: 64 }, (_, i) => pattern(64 * KiB, i + 10));
  await Promise.all(chunks.map((c, i) => dev.write(i * 64 * KiB, [c])));
  resetCopyStats();
  const targets = chunks.map(() => Buffer.alloc(64 * KiB));
  await Promise.all(targets.map((b, i) => dev.read(i * 64 * KiB, b)));
  t.ok(targets.every((b, i) => b.equals(chunks[i]!)), '64 parallel reads return their own data');
  t.ok(copyStats.transfer < (64 * 64 * KiB) / 2, `most read bytes received in place (copied ${copyStats.transfer})`);
});

t.test('TCP, a file export and structured-reply errors mapped to codes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nbdc-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'disk.img');
  await writeFile(file, Buffer.alloc(4 * MiB));
  const server = await nbdkit(t, {
    tcp: true,
    plugin: ['file', `file=${file}`],
    filters: ['error'],
    args: ['error-pwrite=ENOSPC', 'error-pwrite-rate=100%', `error-pwrite-file=${join(dir, 'w')}`, 'error-pread=EIO', 'error-pread-rate=100%', `error-pread-file=${join(dir, 'r')}`],
  });
  const dev = await client(t, server);
  t.equal(dev.size, 4 * MiB);
  await dev.write(0, [pattern(8192, 3)]);
  await writeFile(join(dir, 'w'), '');
  await rejectsWith(t, dev.write(0, [pattern(8192, 4)]), 'ENOSPC', 'write error');
  await writeFile(join(dir, 'r'), '');
  await rejectsWith(t, dev.read(0, Buffer.alloc(8192)), 'EIO', 'read error');
  await rm(join(dir, 'r'));
  const back = Buffer.alloc(8192);
  await dev.read(0, back);
  t.ok(back.equals(pattern(8192, 3)), 'data from before the errors intact, connection still usable');
});

t.test('simple replies when the server has no structured replies', async (t) => {
  const server = await nbdkit(t, { plugin: ['memory', 'size=8M'], flags: ['--no-sr'] });
  const dev = await client(t, server);
  t.notOk(dev.capabilities.blockStatus, 'no base:allocation without structured replies');
  await dev.write(4096, [pattern(100 * KiB, 5)]);
  const back = Buffer.alloc(100 * KiB);
  await dev.read(4096, back);
  t.ok(back.equals(pattern(100 * KiB, 5)));
  t.same(await dev.blockStatus(0, 1 * MiB), [{ length: 1 * MiB, hole: false, zero: false }], 'all data');
});

t.test('a request timeout fails with ETIMEDOUT; the client reconnects after a restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nbdc-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'disk.img');
  await writeFile(file, Buffer.alloc(4 * MiB));
  const slow = await nbdkit(t, { plugin: ['memory', 'size=4M'], filters: ['delay'], args: ['rdelay=3'] });
  const slowDev = await client(t, slow, { timeoutMs: 300 });
  await rejectsWith(t, slowDev.read(0, Buffer.alloc(512)), 'ETIMEDOUT', 'slow read');

  const server = await nbdkit(t, { plugin: ['file', `file=${file}`] });
  const dev = await client(t, server);
  await dev.write(0, [pattern(4096, 6)]);
  await server.kill();
  await rejectsWith(t, dev.read(0, Buffer.alloc(4096)), 'EIO', 'server gone');
  t.equal(dev.status().state, 'failed');
  await server.start();
  const back = Buffer.alloc(4096);
  await dev.read(0, back);
  t.ok(back.equals(pattern(4096, 6)), 'reconnected, same data');
  t.equal(dev.status().state, 'optimal');
});

t.test('a read-only export is reported read-only', async (t) => {
  const server = await nbdkit(t, { plugin: ['memory', 'size=1M'], flags: ['-r'] });
  const dev = await client(t, server);
  t.ok(dev.capabilities.readOnly);
  await rejectsWith(t, dev.write(0, [Buffer.alloc(512)]), 'EPERM', 'write to read-only export');
});

t.test('an old server without NBD_OPT_GO is reached through NBD_OPT_EXPORT_NAME', async (t) => {
  const { createServer } = await import('node:net');
  const {
    NBDMAGIC, IHAVEOPT, REPLY_MAGIC, NBD_FLAG_FIXED_NEWSTYLE, NBD_FLAG_NO_ZEROES, NBD_OPT_EXPORT_NAME,
    NBD_REP_ERR_UNSUP, NBD_FLAG_HAS_FLAGS, NBD_FLAG_SEND_FLUSH, NBD_SIMPLE_REPLY_MAGIC,
  } = await import('../helpers/nbd-spec.js');
  const seen: number[] = [];
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let phase: 'flags' | 'options' | 'transmission' = 'flags';
    const greeting = Buffer.alloc(18);
    greeting.writeBigUInt64BE(NBDMAGIC, 0);
    greeting.writeBigUInt64BE(IHAVEOPT, 8);
    greeting.writeUInt16BE(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES, 16);
    socket.write(greeting);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (phase === 'flags') {
          if (buf.length < 4) return;
          buf = buf.subarray(4);
          phase = 'options';
        } else if (phase === 'options') {
          if (buf.length < 16 || buf.length < 16 + buf.readUInt32BE(12)) return;
          const option = buf.readUInt32BE(8);
          buf = buf.subarray(16 + buf.readUInt32BE(12));
          seen.push(option);
          if (option === NBD_OPT_EXPORT_NAME) {
            const info = Buffer.alloc(10);
            info.writeBigUInt64BE(1024n * 1024n, 0);
            info.writeUInt16BE(NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH, 8);
            socket.write(info);
            phase = 'transmission';
          } else {
            const reply = Buffer.alloc(20);
            reply.writeBigUInt64BE(REPLY_MAGIC, 0);
            reply.writeUInt32BE(option, 8);
            reply.writeUInt32BE(NBD_REP_ERR_UNSUP, 12);
            socket.write(reply);
          }
        } else {
          if (buf.length < 28) return;
          const command = buf.readUInt16BE(6);
          const length = buf.readUInt32BE(24);
          const reply = Buffer.alloc(16);
          reply.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, 0);
          buf.copy(reply, 8, 8, 16);
          buf = buf.subarray(28);
          socket.write(command === 0 ? Buffer.concat([reply, Buffer.alloc(length, 0x5a)]) : reply);
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => server.close(r)));
  const port = (server.address() as { port: number }).port;
  const dev = await client(t, { address: `127.0.0.1:${port}` });
  t.equal(dev.size, 1024 * 1024);
  t.ok(dev.capabilities.flush && !dev.capabilities.trim && !dev.capabilities.blockStatus, 'flags from EXPORT_NAME reply');
  const back = Buffer.alloc(16 * KiB);
  await dev.read(0, back);
  t.ok(back.every((x) => x === 0x5a), 'simple-reply read data');
  await dev.flush();
  t.equal(seen[seen.length - 1], 1, 'fell back to NBD_OPT_EXPORT_NAME (1) after GO was refused');
});
