import t from 'tap';
import { execFile } from 'node:child_process';
import { open, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FileBackend, skipBytes, type FileIo } from '../../fabric/backends/file.js';
import { CheckedDevice } from '../../fabric/checked.js';
import { buildGraph } from '../../member/devices/build.js';
import { tempDir } from '../helpers/clients.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

function syncs(dev: FileBackend): number {
  return (dev.status().detail as { datasyncs: number }).datasyncs;
}

/** Wraps a real file handle: records writev calls, and can cap each call's bytes. */
function recordingIo(real: FileIo, cap = Infinity) {
  const calls: Buffer[][] = [];
  let reads = 0;
  const io: FileIo = {
    async read(buffer, offset, length, position) {
      reads++;
      return real.read(buffer, offset, Math.min(length, cap), position);
    },
    async writev(buffers, position) {
      calls.push([...buffers]);
      let budget = cap;
      const allowed: Buffer[] = [];
      for (const b of buffers) {
        if (budget <= 0) break;
        allowed.push(b.length <= budget ? b : b.subarray(0, budget));
        budget -= b.length;
      }
      return real.writev(allowed, position);
    },
    datasync: () => real.datasync(),
    close: () => real.close(),
  };
  return { io, calls, reads: () => reads };
}

t.test('creates a sparse file of the given size; read, write, flush and FUA', async (t) => {
  const dir = await tempDir(t, 'blockgate-file-');
  const path = join(dir, 'disk.img');
  const dev = await FileBackend.open({ name: 'f', path, size: 8 * MiB, create: true });
  t.teardown(() => dev.close());
  t.equal(dev.size, 8 * MiB);
  t.equal((await stat(path)).size, 8 * MiB);
  t.ok((await stat(path)).blocks * 512 < MiB, 'created sparse');
  t.match(dev.capabilities, { readOnly: false, flush: true, fua: true, trim: true, writeZeroes: true, fastZero: true, blockStatus: true, multiConn: true });

  const data = pattern(100_000, 1);
  await dev.write(12345, [data.subarray(0, 1), data.subarray(1, 4096), data.subarray(4096)]);
  t.equal(syncs(dev), 0, 'plain write does not sync');
  const back = Buffer.alloc(data.length);
  await dev.read(12345, back);
  t.same(back, data);
  t.same((await readFile(path)).subarray(12345, 12345 + data.length), data, 'bytes are in the file');

  await dev.write(0, [pattern(512, 2)], { fua: true });
  t.equal(syncs(dev), 1, 'FUA write syncs');
  await dev.flush();
  t.equal(syncs(dev), 2, 'flush syncs');
  await dev.writeZeroes(12345, 5000, { fua: true });
  t.equal(syncs(dev), 3, 'FUA write zeroes syncs');
  await dev.read(12345, back);
  t.same(back.subarray(0, 5000), Buffer.alloc(5000), 'zeroes written');
  t.same(back.subarray(5000), data.subarray(5000), 'rest intact');

  const extents = await dev.blockStatus(0, 8 * MiB);
  t.equal(extents.reduce((n, e) => n + e.length, 0), 8 * MiB, 'extents cover the device');
  t.match(extents[0], { hole: false, zero: false }, 'written start is data');
  t.match(extents[extents.length - 1], { hole: true, zero: true }, 'never-written tail is a hole');

  const allocatedBefore = (await stat(path)).blocks;
  await dev.trim(0, MiB);
  t.ok((await stat(path)).blocks < allocatedBefore, 'trim released space');
  t.match((await dev.blockStatus(0, MiB))[0], { length: MiB, hole: true }, 'trimmed range is a hole');
  await dev.read(12345, back);
  t.same(back, Buffer.alloc(back.length), 'trimmed range reads zeroes');

  await dev.write(2 * MiB, [pattern(MiB, 3)]);
  await dev.flush();
  const allocatedWritten = (await stat(path)).blocks;
  await dev.writeZeroes(2 * MiB, MiB, { noHole: true });
  // ext4 keeps the blocks as unwritten extents, which SEEK_DATA may report as holes; the
  // space itself must stay allocated.
  t.ok((await stat(path)).blocks >= allocatedWritten, 'NO_HOLE zeroing keeps the range allocated');
  const zeroed = Buffer.alloc(MiB, 1);
  await dev.read(2 * MiB, zeroed);
  t.same(zeroed, Buffer.alloc(MiB), 'NO_HOLE range reads zeroes');
  await dev.writeZeroes(2 * MiB, MiB, { fastOnly: true });
  t.match((await dev.blockStatus(2 * MiB, MiB))[0], { length: MiB, hole: true }, 'fast zeroing punches a hole');
  await dev.cache(0, 3 * MiB);
});

t.test('write zeroes covers large ranges exactly', async (t) => {
  const dir = await tempDir(t, 'blockgate-file-');
  const path = join(dir, 'z.img');
  await writeFile(path, Buffer.alloc(4 * MiB + 10, 0xaa));
  const dev = await FileBackend.open({ name: 'z', path });
  t.teardown(() => dev.close());
  t.equal(dev.size, 4 * MiB + 10, 'size taken from the file');
  await dev.writeZeroes(3, 4 * MiB + 5);
  const file = await readFile(path);
  t.same(file.subarray(0, 3), Buffer.alloc(3, 0xaa));
  t.ok(file.subarray(3, 4 * MiB + 8).every((x) => x === 0), 'range zeroed');
  t.same(file.subarray(4 * MiB + 8), Buffer.alloc(2, 0xaa));
});

t.test('reads past the end of a shorter regular file return zeroes', async (t) => {
  const dir = await tempDir(t, 'blockgate-file-');
  const path = join(dir, 'short.img');
  await writeFile(path, Buffer.alloc(1000, 0x55));
  const dev = await FileBackend.open({ name: 's', path, size: 64 * 1024, readOnly: true });
  t.teardown(() => dev.close());
  t.equal((await stat(path)).size, 1000, 'read-only never extends the file');
  const buf = Buffer.alloc(4096, 0xff);
  await dev.read(0, buf);
  t.same(buf.subarray(0, 1000), Buffer.alloc(1000, 0x55));
  t.ok(buf.subarray(1000).every((x) => x === 0), 'beyond EOF is zero');
  await dev.read(60 * 1024, buf);
  t.ok(buf.every((x) => x === 0));
});

t.test('read-only: opened O_RDONLY, writes refused with EPERM', async (t) => {
  const dir = await tempDir(t, 'blockgate-file-');
  const path = join(dir, 'ro.img');
  await writeFile(path, pattern(8192, 3));
  const dev = await FileBackend.open({ name: 'ro', path, readOnly: true });
  t.teardown(() => dev.close());
  t.equal(dev.capabilities.readOnly, true);
  await t.rejects(dev.write(0, [Buffer.alloc(1)]), { code: 'EPERM' });
  await t.rejects(dev.writeZeroes(0, 1), { code: 'EPERM' });
  await t.rejects(new CheckedDevice(dev).write(0, [Buffer.alloc(1)]), { code: 'EPERM' });
  t.same(await readFile(path), pattern(8192, 3), 'file unchanged');
  const buf = Buffer.alloc(8192);
  await dev.read(0, buf);
  t.same(buf, pattern(8192, 3));
});

t.test('opening: missing file without size, non-regular files, create:false', async (t) => {
  const dir = await tempDir(t, 'blockgate-file-');
  await t.rejects(FileBackend.open({ name: 'x', path: join(dir, 'missing') }), { name: 'BlockError' });
  await t.rejects(FileBackend.open({ name: 'x', path: join(dir, 'missing'), size: MiB, create: false }), { name: 'BlockError' });
  await t.rejects(FileBackend.open({ name: 'x', path: join(dir, 'missing'), size: MiB }), { name: 'BlockError' }, 'a size alone never creates the file');
  await t.rejects(stat(join(dir, 'missing')), { code: 'ENOENT' });
  await t.rejects(FileBackend.open({ name: 'x', path: dir, readOnly: true }), { code: 'EINVAL' }, 'a directory is refused');
  await writeFile(join(dir, 'empty'), '');
  await t.rejects(FileBackend.open({ name: 'x', path: join(dir, 'empty') }), { code: 'EINVAL' }, 'an empty file needs a size');
  await t.rejects(FileBackend.open({ name: 'x', path: join(dir, 'n'), size: -5 }), { code: 'EINVAL' });
  await writeFile(join(dir, 'small'), Buffer.alloc(100));
  const dev = await FileBackend.open({ name: 'x', path: join(dir, 'small'), size: 4096 });
  t.equal((await stat(join(dir, 'small'))).size, 4096, 'extended to size');
  await dev.close();
});

t.test('short writes continue from views of the same slices, never a concatenation', async (t) => {
  const dir = await tempDir(t, 'blockgate-file-');
  const path = join(dir, 'sw.img');
  const fh = await open(path, 'w+');
  await fh.truncate(MiB);
  const rec = recordingIo(fh, 1000);
  const dev = new FileBackend('sw', rec.io, {
    path, size: MiB, blockDevice: false, readOnly: false, rotational: false,
    blockSizes: { minimum: 1, preferred: 4096, maximum: MiB },
  });
  t.teardown(() => dev.close());
  const a = pattern(700, 1);
  const b = pattern(2500, 2);
  const c = pattern(300, 3);
  await dev.write(10, [a, b, c]);
  t.equal(rec.calls.length, 4, '3500 bytes at 1000 per call');
  t.equal(rec.calls[0]![0], a, 'first call gets the caller\'s own buffers');
  t.equal(rec.calls[0]![1], b);
  t.equal(rec.calls[0]![2], c);
  t.equal(rec.calls[1]![0]!.buffer, b.buffer, 'later calls use views of the same memory');
  t.equal(rec.calls[1]![0]!.byteOffset, b.byteOffset + 300);
  t.equal(rec.calls[3]![rec.calls[3]!.length - 1]!.buffer, c.buffer);
  t.equal((dev.status().detail as { shortWrites: number }).shortWrites, 3);
  const back = Buffer.alloc(3500);
  await dev.read(10, back);
  t.same(back, Buffer.concat([a, b, c]));
  t.ok(rec.reads() >= 4, 'short reads looped');
  t.same(a, pattern(700, 1), 'caller slices untouched');
});

t.test('a write that makes no progress fails with EIO; fs errors become BlockErrors', async (t) => {
  const stuck: FileIo = {
    read: async () => { throw Object.assign(new Error('boom'), { code: 'EIO' }); },
    writev: async () => ({ bytesWritten: 0 }),
    datasync: async () => { throw Object.assign(new Error('no space'), { code: 'ENOSPC' }); },
    close: async () => undefined,
  };
  const dev = new FileBackend('stuck', stuck, {
    path: '/nowhere', size: 4096, blockDevice: false, readOnly: false, rotational: false,
    blockSizes: { minimum: 1, preferred: 4096, maximum: 4096 },
  });
  await t.rejects(dev.write(0, [Buffer.alloc(10)]), { code: 'EIO' });
  await t.rejects(dev.read(0, Buffer.alloc(10)), { code: 'EIO', name: 'BlockError' });
  await t.rejects(dev.flush(), { code: 'ENOSPC', name: 'BlockError' });
  await dev.close();
});

t.test('close waits for in-flight requests, then refuses with ESHUTDOWN', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let closedIo = false;
  const io: FileIo = {
    read: async (_b, _o, length) => { await gate; return { bytesRead: length }; },
    writev: async (bufs) => ({ bytesWritten: bufs.reduce((n, b) => n + b.length, 0) }),
    datasync: async () => undefined,
    close: async () => { closedIo = true; },
  };
  const dev = new FileBackend('c', io, {
    path: '/x', size: 4096, blockDevice: false, readOnly: false, rotational: false,
    blockSizes: { minimum: 1, preferred: 4096, maximum: 4096 },
  });
  const pending = dev.read(0, Buffer.alloc(10));
  const closing = dev.close();
  await new Promise((r) => setImmediate(r));
  t.equal(closedIo, false, 'descriptor kept while a read is in flight');
  await t.rejects(dev.read(0, Buffer.alloc(1)), { code: 'ESHUTDOWN' });
  release();
  await pending;
  await closing;
  t.equal(closedIo, true);
  t.equal(dev.status().state, 'failed');
});

t.test('skipBytes', async (t) => {
  const a = Buffer.from('abc');
  const b = Buffer.from('defg');
  t.same(skipBytes([a, b], 0).map(String), ['abc', 'defg']);
  t.same(skipBytes([a, b], 3).map(String), ['defg']);
  t.same(skipBytes([a, b], 5).map(String), ['fg']);
  t.same(skipBytes([a, b], 7), []);
});

t.test('config kind "file" builds a device', async (t) => {
  const dir = await tempDir(t, 'blockgate-file-');
  const missing = join(dir, 'k.img');
  await t.rejects(
    buildGraph([{ name: 'disk', type: 'file', path: missing, size: '2MiB' }], { dataDir: dir }),
    { name: 'ConfigError', field: 'devices[0].path', problem: /does not exist \(set create: true/ },
    'a missing file is a configuration error naming the path',
  );
  await t.rejects(stat(missing), { code: 'ENOENT' }, 'and is not created without create: true');
  const devices = await buildGraph([{ name: 'disk', type: 'file', path: missing, size: '2MiB', create: true }], { dataDir: dir });
  const dev = devices.get('disk')!;
  t.equal(dev.size, 2 * MiB);
  await dev.close();
  await t.rejects(buildGraph([{ name: 'disk', type: 'file' }], { dataDir: dir }), { name: 'ConfigError', field: 'devices[0].path' });
  await t.rejects(buildGraph([{ name: 'disk', type: 'file', path: '/x', size: 'lots' }], { dataDir: dir }), { name: 'ConfigError', field: 'devices[0].size' });
  await t.rejects(buildGraph([{ name: 'disk', type: 'file', path: '/x', size: 0 }], { dataDir: dir }), { name: 'ConfigError', field: 'devices[0].size', problem: /more than 0/ });
  await t.rejects(buildGraph([{ name: 'disk', type: 'file', path: 'x' }], { dataDir: dir }), { name: 'ConfigError', field: 'devices[0].path', problem: /absolute/ });
});

t.test('a loop block device: size from sysfs, I/O reaches the backing file', async (t) => {
  const dir = await tempDir(t, 'blockgate-file-');
  const backing = join(dir, 'loop.img');
  await writeFile(backing, Buffer.alloc(0));
  await truncate(backing, 4 * MiB);
  const { stdout } = await run('losetup', ['-f', '--show', backing], { timeout: 10_000 });
  const loop = stdout.trim();
  t.teardown(() => run('losetup', ['-d', loop], { timeout: 10_000 }));
  const dev = await FileBackend.open({ name: 'blk', path: loop });
  t.equal(dev.size, 4 * MiB, 'size read from /sys/dev/block');
  t.equal(dev.blockSizes.minimum, 512, 'logical block size');
  t.equal((dev.status().detail as { blockDevice: boolean }).blockDevice, true);
  const data = pattern(8192, 9);
  await dev.write(4096, [data], { fua: true });
  t.equal(syncs(dev), 1);
  await dev.close();
  t.same((await readFile(backing)).subarray(4096, 4096 + 8192), data, 'data in the backing file');
  await t.rejects(FileBackend.open({ name: 'blk', path: loop, size: 8 * MiB }), { code: 'EINVAL' }, 'cannot grow a block device');
});
