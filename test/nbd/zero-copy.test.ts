import t from 'tap';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { readBufferPool } from '../../fabric/buffers.js';
import { copyStats, resetCopyStats } from '../../fabric/copies.js';
import { REQUEST_HEADER_SIZE } from '../../fabric/protocols/nbd.js';
import { startNbdServer } from '../helpers/nbd.js';

const run = promisify(execFile);
const MiB = 1 << 20;
const SIZE = 64 * MiB;

/**
 * The only copy the NBD request path may make is a 28-byte request header that arrived
 * split across two socket reads; with at most one request per 4 KiB moved, that bounds
 * transfer copies at 28/4096 ≈ 0.7% of the bytes, and in practice far less.
 */
const headerCopyBound = (bytes: number) => (bytes / 4096) * REQUEST_HEADER_SIZE;

const dir = await mkdtemp(join(tmpdir(), 'blockgate-zc-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const nbd = await startNbdServer([{ name: 'disk', device: new MemoryBackend({ name: 'zc-disk', size: SIZE }) }]);
t.teardown(() => nbd.stop());

t.test('nbdcopy in and out: no payload copies, every byte stored once', async (t) => {
  const source = join(dir, 'source.img');
  const back = join(dir, 'back.img');
  const data = randomBytes(SIZE);
  await writeFile(source, data);
  resetCopyStats();
  await run('nbdcopy', ['--flush', source, nbd.uri()]);
  const afterWrite = { ...copyStats };
  t.comment(`write ${SIZE} bytes: transfer=${afterWrite.transfer} stored=${afterWrite.stored}`);
  t.equal(afterWrite.stored, SIZE, 'the backend stored each written byte once');
  t.ok(afterWrite.transfer <= headerCopyBound(SIZE), `transfer copies ${afterWrite.transfer} within header bound`);

  resetCopyStats();
  const pool = { ...readBufferPool.stats };
  await run('nbdcopy', [nbd.uri(), back]);
  const acquired = readBufferPool.stats.acquired - pool.acquired;
  const allocated = readBufferPool.stats.allocated - pool.allocated;
  t.comment(`read buffers: ${acquired} borrowed, ${allocated} newly allocated`);
  t.ok(acquired > 0, 'reads borrowed pooled buffers');
  t.equal(readBufferPool.stats.released - pool.released, acquired, 'every buffer went back after the socket wrote it');
  t.comment(`read ${SIZE} bytes: transfer=${copyStats.transfer} stored=${copyStats.stored}`);
  t.equal(copyStats.transfer, 0, 'reads copy nothing: pooled buffer straight to the socket');
  t.equal(copyStats.stored, SIZE, 'each byte read out of the store once');
  t.ok((await readFile(back)).equals(data), 'data intact');
});

t.test('qemu-io many small and large requests over the Unix socket', async (t) => {
  resetCopyStats();
  const commands: string[] = [];
  for (let i = 0; i < 256; i++) commands.push('-c', `write -P ${(i % 250) + 1} ${i * 65536} 64k`);
  commands.push('-c', `write -P 7 ${16 * MiB} ${16 * MiB}`);
  await run('qemu-io', ['-f', 'raw', ...commands, nbd.unixUri()]);
  const written = 256 * 65536 + 16 * MiB;
  t.comment(`write ${written} bytes: transfer=${copyStats.transfer} stored=${copyStats.stored}`);
  t.equal(copyStats.stored, written);
  t.ok(copyStats.transfer <= headerCopyBound(written), `transfer copies ${copyStats.transfer} within header bound`);

  resetCopyStats();
  const reads: string[] = [];
  for (let i = 0; i < 256; i += 17) reads.push('-c', `read -P ${(i % 250) + 1} ${i * 65536} 64k`);
  reads.push('-c', `read -P 7 ${16 * MiB} ${16 * MiB}`);
  const pool = { ...readBufferPool.stats };
  const { stdout } = await run('qemu-io', ['-f', 'raw', ...reads, nbd.unixUri()]);
  const acquired = readBufferPool.stats.acquired - pool.acquired;
  const allocated = readBufferPool.stats.allocated - pool.allocated;
  t.ok(acquired >= 17, `${acquired} read buffers borrowed`);
  // One request at a time: after the first of each size class, every read reuses a buffer.
  t.ok(allocated <= 2, `${allocated} newly allocated for ${acquired} reads`);
  t.notMatch(stdout, /verification failed/i, 'patterns read back');
  t.equal(copyStats.transfer, 0);
  t.equal(copyStats.stored, 16 * 65536 + 16 * MiB);
});
