import t from 'tap';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FileBackend } from '../../fabric/backends/file.js';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { runTool, startBackground, tempDir, waitFor } from '../helpers/clients.js';
import { startNbdkit } from '../helpers/nbdkit-server.js';
import { startNbdServer } from '../helpers/nbd.js';

/**
 * A file backend whose disk is slow must not stall anything else the member serves. The
 * slow disk: nbdkit's delay filter behind nbdfuse, so the file backend sees an ordinary
 * file whose reads, writes and hole punches each take seconds (FUSE refuses RWF_NOWAIT, so
 * reads must go to the thread pool; writes go in a batch to the pool, fallocate to a koffi
 * worker). Once such a request has
 * reached the disk (nbdkit's log filter says so), a real client reads another export of
 * the same member. If the slow request blocked the event loop, that client could not even
 * finish its handshake before the slow request completed. The clients are sequenced by a
 * shell script, outside the member's process, so the order they finish in is what it is
 * even when the member's event loop is stuck. Needs root (FUSE).
 */

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
// Far longer than a client needs on a loaded machine; nothing waits for it unless it fails.
const DELAY_S = 8;

// nbdfuse mounts its file's directory: the FUSE file alone in one, everything else in another.
const dir = await tempDir(t, 'blockgate-slowio-');
const work = await tempDir(t, 'blockgate-slowio-work-');
const diskLog = join(work, 'nbdkit.log');
const slowDisk = await startNbdkit(t, {
  plugin: ['memory', `size=${SIZE}`],
  // The log filter is outermost: it logs each request as it arrives, before the delay.
  filters: ['log', 'delay'],
  args: [`logfile=${diskLog}`, `delay-read=${DELAY_S}`, `delay-write=${DELAY_S}`, `delay-trim=${DELAY_S}`],
});
const image = join(dir, 'disk');
const fuse = startBackground('nbdfuse', [image, slowDisk.uri]);
t.teardown(async () => {
  await runTool('fusermount3', ['-u', dir], { allowFailure: true, timeoutMs: 30_000 });
  await fuse.stop();
});
await waitFor(async () => (await stat(image)).size === SIZE, `nbdfuse file ${image}\n${fuse.output()}`);

const slow = await FileBackend.open({ name: 'slow', path: image });
const fast = new MemoryBackend({ name: 'fast', size: 8 * MiB });
const server = await startNbdServer([
  { name: 'slow', device: slow },
  { name: 'fast', device: fast },
]);
t.teardown(async () => {
  await server.stop();
  await slow.close();
});

/**
 * Run the `slow` qemu-io command against the slow export; once nbdkit logs a request
 * matching `arrived`, run a read of the fast export. Resolves with the order they finished.
 */
async function finishingOrder(slow: string, arrived: RegExp): Promise<string[]> {
  const order = join(work, 'order');
  const script = [
    'set -e',
    `: > ${order}`,
    `(qemu-io -f raw -d unmap -c '${slow}' '${server.uri('slow')}' >/dev/null; echo slow >> ${order}) &`,
    `until grep -Eq '${arrived.source}' ${diskLog} 2>/dev/null; do sleep 0.05; done`,
    `qemu-io -f raw -c 'read -P 0 0 64k' '${server.uri('fast')}' >/dev/null`,
    `echo fast >> ${order}`,
    'wait',
    `cat ${order}`,
  ].join('\n');
  const { stdout } = await runTool('bash', ['-c', script], { timeoutMs: 120_000 });
  return stdout.trim().split('\n');
}

t.test('a read that waits for the disk goes to the thread pool', async (t) => {
  const order = await finishingOrder('read -P 0 32M 4k', /Read .*offset=0x2000000/);
  t.same(order, ['fast', 'slow'], 'another export served a whole client session while the slow read waited for the disk');
  t.equal((slow.status().detail as { ioPath: string }).ioPath, 'pool', 'FUSE refused RWF_NOWAIT: reads use the pool');
});

t.test('punching a hole runs off the event loop', async (t) => {
  const order = await finishingOrder('discard 16M 4M', /Trim .*offset=0x1000000/);
  t.same(order, ['fast', 'slow'], 'another export served a whole client session while the hole was being punched');
});

t.test('a write that waits for the disk does not hold up the member', async (t) => {
  const order = await finishingOrder('write -P 7 40M 4k', /Write .*offset=0x2800000/);
  t.same(order, ['fast', 'slow'], 'another export served a whole client session while the slow write waited for the disk');
  t.match((slow.status().detail as { writeBatches: object }).writeBatches, { batches: 1 }, 'it went in a batch (libaio)');
});
