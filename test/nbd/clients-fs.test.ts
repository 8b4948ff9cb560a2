import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { randomBytes, runTool, startBackground, waitFor } from '../helpers/clients.js';
import { startNbdServer } from '../helpers/nbd.js';

/**
 * A real filesystem on an export: nbdfuse presents it as a file, the kernel's loop driver
 * mounts it, ext4 writes through it. Needs root (mount, loop devices, FUSE).
 */

const MiB = 1024 * 1024;
const SIZE = 96 * MiB;

const device = new MemoryBackend({ name: 'disk', size: SIZE });
const server = await startNbdServer([{ name: 'disk', device }]);
// Made here and removed last by the one teardown below, after the unmounts.
const fuseDir = await mkdtemp(join(tmpdir(), 'blockgate-fuse-'));
const mountDir = await mkdtemp(join(tmpdir(), 'blockgate-mnt-'));
const image = join(fuseDir, 'disk');
let fuse = startFuse();
let mounted = false;

function startFuse() {
  return startBackground('nbdfuse', [image, server.uri('disk')]);
}

async function waitForImage(): Promise<number> {
  return waitFor(async () => ((await stat(image)).size === SIZE ? SIZE : 0), `nbdfuse file ${image}\n${fuse.output()}`);
}

async function stopFuse(): Promise<{ code: number | null; signal: NodeJS.Signals | null } | null> {
  await runTool('fusermount3', ['-u', fuseDir], { timeoutMs: 30_000 });
  return Promise.race([fuse.exited, new Promise<null>((r) => setTimeout(() => r(null), 20_000))]);
}

async function umount(): Promise<void> {
  if (!mounted) return;
  await runTool('umount', [mountDir], { timeoutMs: 30_000 });
  mounted = false;
}

// One teardown, in order: filesystem, FUSE, server, directories. Steps that may fail don't stop the rest.
t.teardown(async () => {
  if (mounted) await runTool('umount', ['-l', mountDir], { allowFailure: true, timeoutMs: 30_000 });
  await runTool('fusermount3', ['-u', fuseDir], { allowFailure: true, timeoutMs: 30_000 });
  await fuse.stop();
  await server.stop();
  await device.close();
  await rm(fuseDir, { recursive: true, force: true });
  await rm(mountDir, { recursive: true, force: true });
});

const files = new Map<string, Buffer>([
  ['small.txt', Buffer.from('hello from blockgate\n')],
  ['one-block.bin', randomBytes(4096, 1)],
  ['odd.bin', randomBytes(123_457, 2)],
  ['dir/nested/big.bin', randomBytes(6 * MiB + 3, 3)],
  ['dir/two.bin', randomBytes(MiB, 4)],
]);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

t.test('nbdfuse presents the export as a file', async (t) => {
  t.equal(await waitForImage(), SIZE);
});

t.test('mkfs.ext4, mount, write files, sync, umount', async (t) => {
  await runTool('mkfs.ext4', ['-q', '-F', image], { timeoutMs: 60_000 });
  t.ok(device.allocatedBytes > 0, `mkfs wrote metadata (${device.allocatedBytes} bytes allocated)`);
  await runTool('mount', ['-o', 'loop', image, mountDir], { timeoutMs: 30_000 });
  mounted = true;
  for (const [name, data] of files) {
    await mkdir(join(mountDir, name, '..'), { recursive: true });
    await writeFile(join(mountDir, name), data);
  }
  await runTool('sync', ['-f', join(mountDir, 'small.txt')]);
  await umount();
  const flushes = server.fabric.deviceStats.get('disk')!.byOp.get('flush')!.ops;
  const writes = server.fabric.deviceStats.get('disk')!.byOp.get('write')!.bytes;
  t.ok(writes >= 7 * MiB, `file data reached the device (${writes} bytes written)`);
  t.ok(flushes >= 1, `sync and umount flushed (${flushes} flushes)`);
});

t.test('a fresh nbdfuse (no page cache) and remount: every file reads back with the same sha256', async (t) => {
  t.same(await stopFuse(), { code: 0, signal: null }, 'first nbdfuse exited 0');
  fuse = startFuse();
  await waitForImage();
  const readsBefore = server.fabric.deviceStats.get('disk')!.byOp.get('read')!.bytes;
  await runTool('mount', ['-o', 'loop', image, mountDir], { timeoutMs: 30_000 });
  mounted = true;
  for (const [name, data] of files) {
    t.equal(sha256(await readFile(join(mountDir, name))), sha256(data), name);
  }
  const readBytes = server.fabric.deviceStats.get('disk')!.byOp.get('read')!.bytes - readsBefore;
  t.ok(readBytes >= 7 * MiB, `the files were read from the device (${readBytes} bytes)`);
  await umount();
});

t.test('fsck.ext4 -n finds the filesystem clean', async (t) => {
  const r = await runTool('fsck.ext4', ['-n', '-f', image], { allowFailure: true, timeoutMs: 60_000 });
  t.equal(r.code, 0, `fsck exit 0\n${r.stdout}${r.stderr}`);
  t.match(r.stdout, /Pass 5/);
});

t.test('fusermount3 -u ends nbdfuse cleanly', async (t) => {
  t.same(await stopFuse(), { code: 0, signal: null }, `nbdfuse exited 0\n${fuse.output()}`);
});
