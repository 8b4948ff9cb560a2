import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { FileBackend } from '../../fabric/backends/file.js';
import { randomBytes, runTool, tempDir } from '../helpers/clients.js';
import { startNbdServer } from '../helpers/nbd.js';

const MiB = 1024 * 1024;
const SIZE = 24 * MiB;

const dir = await tempDir(t, 'blockgate-qemu-');
const shm = await tempDir(t, 'blockgate-qemu-', '/dev/shm');
const memory = new MemoryBackend({ name: 'disk', size: SIZE });
const file = await FileBackend.open({ name: 'file', path: join(shm, 'disk.img'), size: SIZE, create: true });
const scratch = new MemoryBackend({ name: 'scratch', size: 16 * MiB });
const server = await startNbdServer([
  { name: 'disk', device: memory },
  { name: 'file', device: file },
  { name: 'scratch', device: scratch },
]);
t.teardown(async () => {
  await server.stop();
  await Promise.all([memory.close(), file.close(), scratch.close()]);
});

// A raw image with random data in some places and holes elsewhere, then a real qcow2 of it.
const raw = join(dir, 'source.raw');
const qcow2 = join(dir, 'source.qcow2');
{
  const image = Buffer.alloc(SIZE);
  randomBytes(5 * MiB, 7).copy(image, 0);
  randomBytes(3 * MiB + 12345, 8).copy(image, 9 * MiB + 512);
  randomBytes(MiB, 9).copy(image, SIZE - MiB);
  await writeFile(raw, image);
  await runTool('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
}

t.test('qemu-img: info, convert a qcow2 onto the export, compare', async (t) => {
  const info = JSON.parse((await runTool('qemu-img', ['info', '--output=json', server.uri('disk')])).stdout) as { 'virtual-size': number };
  t.equal(info['virtual-size'], SIZE, 'qemu sees the export size');

  await runTool('qemu-img', ['convert', '-n', '-p', '-f', 'qcow2', '-O', 'raw', qcow2, server.uri('disk')], { timeoutMs: 120_000 });
  const same = await runTool('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', qcow2, server.uri('disk')], { allowFailure: true });
  t.equal(same.code, 0, `identical: ${same.stdout.trim()}`);
  t.ok(memory.allocatedBytes < 12 * MiB, `holes stayed holes (${memory.allocatedBytes} bytes allocated)`);

  const map = JSON.parse((await runTool('qemu-img', ['map', '--output=json', '-f', 'raw', server.uri('disk')])).stdout) as { start: number; length: number; data: boolean; zero: boolean }[];
  const dataBytes = map.filter((e) => e.data).reduce((n, e) => n + e.length, 0);
  t.ok(dataBytes >= 9 * MiB + 12345 && dataBytes <= memory.allocatedBytes, `qemu-img map sees the allocation (${dataBytes} bytes of data)`);
  t.same(map[0], { start: 0, length: 5 * MiB, depth: 0, present: true, zero: false, data: true, offset: 0 }, 'first extent: the 5 MiB written');

  // Change one byte behind qemu's back: compare must notice.
  await memory.write(10 * MiB, [Buffer.from([0x42 ^ (await peek(10 * MiB))])]);
  const differs = await runTool('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', qcow2, server.uri('disk')], { allowFailure: true });
  t.equal(differs.code, 1, 'a changed byte is found');
  t.match(differs.stdout, /Content mismatch at offset 10485760/);
});

async function peek(offset: number): Promise<number> {
  const b = Buffer.alloc(1);
  await memory.read(offset, b);
  return b[0]!;
}

t.test('qemu-img convert onto the file backend in /dev/shm lands byte for byte in the file', async (t) => {
  await runTool('qemu-img', ['convert', '-n', '-f', 'qcow2', '-O', 'raw', qcow2, server.unixUri('file')], { timeoutMs: 120_000 });
  const cmp = await runTool('cmp', [raw, join(shm, 'disk.img')], { allowFailure: true });
  t.equal(cmp.code, 0, `the backing file equals the source image ${cmp.stdout}`);
  const cmpNbd = await runTool('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', raw, server.unixUri('file')], { allowFailure: true });
  t.equal(cmpNbd.code, 0, 'and reads back identical over NBD');
});

t.test('qemu-io: patterns, FUA, aio, discard, write -z', async (t) => {
  const uri = server.uri('scratch');
  const { stdout } = await runTool('qemu-io', [
    '-f', 'raw',
    '-c', 'write -P 0xab 0 1M',
    '-c', 'write -f -P 0xcd 1M 64k',
    '-c', 'read -P 0xab 0 1M',
    '-c', 'read -P 0xcd 1M 64k',
    '-c', 'write -P 0x11 3M 1000',
    '-c', 'read -P 0x11 3M 1000',
    '-c', 'aio_write -P 0x21 4M 64k',
    '-c', 'aio_write -P 0x22 5M 128k',
    '-c', 'aio_write -P 0x23 6M 4k',
    '-c', 'aio_flush',
    '-c', 'read -P 0x21 4M 64k',
    '-c', 'read -P 0x22 5M 128k',
    '-c', 'read -P 0x23 6M 4k',
    '-c', 'discard 0 512k',
    '-c', 'read -P 0 0 512k',
    '-c', 'read -P 0xab 512k 512k',
    '-c', 'write -z 4M 64k',
    '-c', 'read -P 0 4M 64k',
    '-c', 'write -z -u 5M 128k',
    '-c', 'read -P 0 5M 128k',
    '-c', 'flush',
    uri,
  ]);
  t.notMatch(stdout, /Pattern verification failed|failed|error/i, 'every pattern verified');
  t.equal(stdout.match(/^read \d+\/\d+ bytes/gm)?.length, 10, 'ten reads done');
  t.equal(stdout.match(/^wrote \d+\/\d+ bytes/gm)?.length, 8, 'eight writes done (3 aio)');
  t.equal(stdout.match(/^discard \d+\/\d+ bytes/gm)?.length, 1);

  // The device itself holds what qemu-io wrote.
  const b = Buffer.alloc(64 * 1024);
  await scratch.read(1 * MiB, b);
  t.ok(b.every((x) => x === 0xcd), 'FUA write on the device');
  // qemu sends write -z as WRITE_ZEROES with NO_HOLE unless -u allows unmapping.
  t.same(await scratch.blockStatus(4 * MiB, 64 * 1024), [{ length: 64 * 1024, hole: false, zero: false }], 'write -z kept the range allocated');
  t.same(await scratch.blockStatus(5 * MiB, 128 * 1024), [{ length: 128 * 1024, hole: true, zero: true }], 'write -z -u punched a hole');
  t.same(await scratch.blockStatus(0, 512 * 1024), [{ length: 512 * 1024, hole: true, zero: true }], 'discard freed the range');
  const stats = server.fabric.deviceStats.get('scratch')!;
  t.ok(stats.byOp.get('trim')!.ops >= 1, 'trim reached the fabric');
  t.ok(stats.byOp.get('writeZeroes')!.ops >= 2, 'write zeroes reached the fabric');
  t.ok(stats.byOp.get('flush')!.ops >= 1, 'flush reached the fabric');
});

t.test('qemu-io: read-only export refuses writes', async (t) => {
  const ro = await startNbdServer([{ name: 'ro', device: new MemoryBackend({ name: 'ro', size: MiB }), readOnly: true }]);
  t.teardown(() => ro.stop());
  const r = await runTool('qemu-io', ['-f', 'raw', '-r', '-c', 'read -P 0 0 64k', ro.uri()]);
  t.match(r.stdout, /read 65536\/65536 bytes/);
  const w = await runTool('qemu-io', ['-f', 'raw', '-c', 'write -P 1 0 4k', ro.uri()], { allowFailure: true });
  t.match(w.stdout + w.stderr, /read-only|Operation not permitted|Permission denied/i, 'write refused');
});
