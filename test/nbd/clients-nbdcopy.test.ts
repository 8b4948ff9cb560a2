import t from 'tap';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { FileBackend } from '../../fabric/backends/file.js';
import { randomBytes, runTool, tempDir } from '../helpers/clients.js';
import { startNbdServer } from '../helpers/nbd.js';

const MiB = 1024 * 1024;
const SIZE = 32 * MiB;

const dir = await tempDir(t, 'blockgate-nbdcopy-');
const shm = await tempDir(t, 'blockgate-nbdcopy-', '/dev/shm');
const memory = new MemoryBackend({ name: 'disk', size: SIZE });
const file = await FileBackend.open({ name: 'file', path: join(shm, 'disk.img'), size: SIZE, create: true });
const server = await startNbdServer([
  { name: 'disk', device: memory },
  { name: 'file', device: file },
]);
t.teardown(async () => {
  await server.stop();
  await Promise.all([memory.close(), file.close()]);
});

// A sparse source: 10 MiB of random data in three runs, the rest holes.
const source = join(dir, 'source.img');
{
  const fh = await open(source, 'w');
  await fh.truncate(SIZE);
  await fh.write(randomBytes(4 * MiB, 11), 0, 4 * MiB, 0);
  await fh.write(randomBytes(5 * MiB, 12), 0, 5 * MiB, 13 * MiB);
  await fh.write(randomBytes(MiB, 13), 0, MiB, SIZE - MiB);
  await fh.close();
}

async function sameFiles(a: string, b: string): Promise<boolean> {
  return (await runTool('cmp', [a, b], { allowFailure: true })).code === 0;
}

t.test('nbdcopy with 4 connections: file → memory export → file', async (t) => {
  const uri = server.uri('disk');
  await runTool('nbdcopy', ['--connections=4', '--requests=16', '--flush', source, uri], { timeoutMs: 120_000 });
  t.ok(memory.allocatedBytes >= 10 * MiB && memory.allocatedBytes <= 10 * MiB + 4 * 65536, `only the data was stored (${memory.allocatedBytes} bytes)`);
  t.ok(server.fabric.deviceStats.get('disk')!.byOp.get('flush')!.ops >= 1, '--flush reached the device');

  const back = join(dir, 'back.img');
  await runTool('nbdcopy', ['--connections=4', uri, back], { timeoutMs: 120_000 });
  t.ok(await sameFiles(source, back), 'the copy back is identical');

  // Control: cmp does notice a difference.
  await memory.write(20 * MiB, [Buffer.from('x')]);
  const changed = join(dir, 'changed.img');
  await runTool('nbdcopy', ['--connections=4', uri, changed], { timeoutMs: 120_000 });
  t.notOk(await sameFiles(source, changed), 'a changed byte shows up');
});

t.test('nbdcopy over the Unix socket into the file backend in /dev/shm', async (t) => {
  await runTool('nbdcopy', ['--connections=4', '--flush', source, server.unixUri('file')], { timeoutMs: 120_000 });
  t.ok(await sameFiles(source, join(shm, 'disk.img')), 'the backing file equals the source');
  t.ok((file.status().detail as { datasyncs: number }).datasyncs >= 1, 'flush reached fdatasync');
  const back = join(dir, 'back-file.img');
  await runTool('nbdcopy', ['--connections=4', server.unixUri('file'), back], { timeoutMs: 120_000 });
  t.ok(await sameFiles(source, back), 'and copies back identical');
});

t.test('nbdcopy export → export between two servers', async (t) => {
  const target = new MemoryBackend({ name: 'target', size: SIZE });
  const other = await startNbdServer([{ name: 'target', device: target }]);
  t.teardown(() => other.stop());
  await runTool('nbdcopy', ['--connections=4', server.unixUri('file'), other.uri('target')], { timeoutMs: 120_000 });
  const back = join(dir, 'back-target.img');
  await runTool('nbdcopy', [other.uri('target'), back], { timeoutMs: 120_000 });
  t.ok(await sameFiles(source, back), 'copied NBD to NBD intact');
});
