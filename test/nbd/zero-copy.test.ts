/**
 * The NBD request path copies no payload, shown by provenance (test/helpers/provenance.ts):
 * while real clients write and read, every byte-moving call in the process is attributed to
 * its caller, write slices reaching the device must be views of the receive arenas, and the
 * buffer the device filled for a read must be the memory the socket sent.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { BufferPool } from '../../fabric/buffers.js';
import { setLogLevel } from '../../fabric/log.js';
import { startNbdServer } from '../helpers/nbd.js';
import { CopyWatch, PatternDevice, patternFile, trackPool } from '../helpers/provenance.js';

const run = promisify(execFile);
const MiB = 1 << 20;
const SIZE = 32 * MiB;
/** NBD request header (NBD protocol spec, "Transmission"): the one thing that may straddle two reads. */
const REQUEST_HEADER = 28;
/** Code that runs only while a connection negotiates (option replies are built there). */
const NEGOTIATION = /gateway[/\\]nbd[/\\](handshake|options)\.ts/;

setLogLevel('warn');

const dir = await mkdtemp(join(tmpdir(), 'blockgate-zc-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const pool = new BufferPool();
const pooled = trackPool(pool);
const device = new PatternDevice(new MemoryBackend({ name: 'zc-disk', size: SIZE }));
const nbd = await startNbdServer([{ name: 'disk', device }], { pool });
t.teardown(() => nbd.stop());
const source = join(dir, 'source.img');
const image = await patternFile(source, SIZE);

function report(t: { comment(message: string): void }, watch: CopyWatch): void {
  for (const line of watch.summary(NEGOTIATION)) t.comment(line);
}

for (const [name, uri] of [
  ['TCP', () => nbd.uri()],
  ['Unix socket', () => nbd.unixUri()],
] as const) {
  t.test(`nbdcopy writes over ${name}: every write slice is a view of a receive arena`, async (t) => {
    device.writeSlices.length = 0;
    device.recording = true;
    const watch = new CopyWatch().start();
    try {
      await run('nbdcopy', ['--flush', '--request-size=262144', source, uri()]);
    } finally {
      watch.stop();
      device.recording = false;
    }
    report(t, watch);
    t.same(device.badWrites, [], 'the device got the bytes the client sent');
    const bytes = device.writeSlices.reduce((n, s) => n + s.length, 0);
    t.equal(bytes, SIZE, 'every byte reached the device');
    t.equal(device.writeSlices.filter((s) => !pooled.has(s.buffer)).length, 0, 'no write slice lies outside the receive arenas');
    const path = watch.onRequestPath(NEGOTIATION);
    t.same(path.filter((m) => m.bytes > REQUEST_HEADER), [], 'blockgate moved nothing larger than a request header');
    const moved = path.reduce((n, m) => n + m.bytes, 0);
    t.ok(moved <= (SIZE / 262144) * REQUEST_HEADER, `${moved} bytes moved: at most one straddling header per request`);
  });

  t.test(`nbdcopy reads over ${name}: the buffer the device filled is what the socket sent`, async (t) => {
    device.filled.length = 0;
    device.recording = true;
    const back = join(dir, 'back.img');
    const watch = new CopyWatch().start();
    try {
      await run('nbdcopy', ['--request-size=262144', uri(), back]);
    } finally {
      watch.stop();
      device.recording = false;
    }
    report(t, watch);
    t.ok((await readFile(back)).equals(image), 'data intact');
    t.ok(device.filled.length >= SIZE / 262144, `${device.filled.length} reads reached the device`);
    t.equal(device.filled.filter((b) => !watch.sent(b)).length, 0, 'every filled buffer went to socket.write as it is');
    t.equal(device.filled.filter((b) => !pooled.has(b.buffer)).length, 0, 'and came from the read-buffer pool');
    t.same(watch.onRequestPath(NEGOTIATION), [], 'blockgate moved no bytes on the request path');
    await rm(back, { force: true });
  });
}

t.test('qemu-io small writes: 512-byte payloads are views too', async (t) => {
  device.writeSlices.length = 0;
  device.recording = true;
  const commands: string[] = [];
  // One 512-byte block each, patterned as the device expects.
  for (let i = 0; i < 64; i++) commands.push('-c', `write -P ${image[i * 4096]} ${i * 4096} 512`);
  const watch = new CopyWatch().start();
  try {
    await run('qemu-io', ['-f', 'raw', ...commands, nbd.uri()]);
  } finally {
    watch.stop();
    device.recording = false;
  }
  report(t, watch);
  t.same(device.badWrites, []);
  t.equal(device.writeSlices.length >= 64, true);
  t.equal(device.writeSlices.filter((s) => !pooled.has(s.buffer)).length, 0, 'every slice is a view of a receive arena');
  t.same(watch.onRequestPath(NEGOTIATION).filter((m) => m.bytes > REQUEST_HEADER), [], 'nothing larger than a request header moved');
});
