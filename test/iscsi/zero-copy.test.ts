/**
 * The iSCSI data path copies no payload, shown by provenance (test/helpers/provenance.ts):
 * while qemu-img (libiscsi) writes and reads a LUN, every byte-moving call in the process
 * is attributed to its caller; Data-Out reaching the device must be views of the receive
 * arenas, and the buffer the device filled for a READ must be the memory the socket sent
 * in the Data-In PDUs.
 */
import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { readBufferPool } from '../../fabric/buffers.js';
import { read10, run, startBlockgate, TestInitiator, write10 } from '../helpers/iscsi.js';
import { CopyWatch, PatternDevice, patternFile, trackPool, watchQueuedChunks } from '../helpers/provenance.js';

const MiB = 1 << 20;
const SIZE = 32 * MiB;
/** iSCSI Basic Header Segment (RFC 7143 §11.2.1): the one thing that may straddle two reads. */
const BHS_LENGTH = 48;
/**
 * Code off the media path: login and control PDUs (copied out of the arenas on purpose), and
 * the SCSI commands that build small parameter data (INQUIRY, MODE SENSE, READ CAPACITY…).
 */
const CONTROL =
  /gateway[/\\]iscsi[/\\](login|negotiation|text|discovery|chap)\.ts|detachPdu|Connection\.onLogin|gateway[/\\]scsi[/\\](inquiry|vpd|mode|mode-pages|capacity|report-luns|report-opcodes|alua|target-port-groups|request-sense|lba-status|unit-attention)\.ts/;

const dir = await mkdtemp(join(tmpdir(), 'blockgate-izc-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const pooled = trackPool(readBufferPool);
const device = new PatternDevice(new MemoryBackend({ name: 'disk', size: SIZE }));
const bg = await startBlockgate({ device });
t.teardown(() => bg.stop());
const source = join(dir, 'source.img');
const image = await patternFile(source, SIZE);

function report(t: { comment(message: string): void }, watch: CopyWatch): void {
  for (const line of watch.summary(CONTROL)) t.comment(line);
}

t.test('qemu-img writes a LUN: every Data-Out byte reaches the device as a view of a receive arena', async (t) => {
  device.recording = true;
  const watch = new CopyWatch().start();
  let r;
  try {
    r = await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', source, bg.url(0)]);
  } finally {
    watch.stop();
    device.recording = false;
  }
  t.equal(r.code, 0, r.stderr);
  report(t, watch);
  t.same(device.badWrites, [], 'the device got the bytes the initiator sent');
  t.equal(device.writeSlices.reduce((n, s) => n + s.length, 0), SIZE, 'every byte reached the device');
  t.equal(device.writeSlices.filter((s) => !pooled.has(s.buffer)).length, 0, 'no write slice lies outside the receive arenas');
  const path = watch.onRequestPath(CONTROL);
  t.same(path.filter((m) => m.bytes > BHS_LENGTH), [], 'blockgate moved nothing larger than a PDU header');
  t.ok(path.reduce((n, m) => n + m.bytes, 0) <= (SIZE / 8192) * BHS_LENGTH, 'at most one straddling header per PDU');
});

t.test('qemu-img reads a LUN: the buffer the device filled is what went into the Data-In PDUs', async (t) => {
  device.recording = true;
  const back = join(dir, 'back.img');
  const watch = new CopyWatch().start();
  let r;
  try {
    r = await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', bg.url(0), back]);
  } finally {
    watch.stop();
    device.recording = false;
  }
  t.equal(r.code, 0, r.stderr);
  report(t, watch);
  t.ok((await readFile(back)).equals(image), 'data intact');
  t.ok(device.filled.length > 0, `${device.filled.length} device reads`);
  t.equal(device.filled.filter((b) => !watch.sent(b)).length, 0, 'every filled buffer went to socket.write (as Data-In slices)');
  t.equal(device.filled.filter((b) => !pooled.has(b.buffer)).length, 0, 'and came from the read-buffer pool');
  t.same(watch.onRequestPath(CONTROL).filter((m) => m.bytes > BHS_LENGTH), [], 'blockgate moved nothing larger than a PDU header');
});

t.test('R2T bursts of small Data-Out PDUs with header and data digests: still views, nothing moved', async (t) => {
  const small = await startBlockgate({ device: new PatternDevice(new MemoryBackend({ name: 'disk', size: 8 * MiB })), server: { limits: { firstBurstLength: 65536, maxBurstLength: 262144 } } });
  t.teardown(() => small.stop());
  const ini = await TestInitiator.connect(small.port);
  t.teardown(() => ini.close());
  await ini.login({ maxRecvDataSegmentLength: 16384, headerDigest: true, dataDigest: true });
  t.ok(ini.headerDigest && ini.dataDigest, 'digests negotiated');
  const dev = small.fabric.device('disk') as PatternDevice;
  const data = image.subarray(1 * MiB, 5 * MiB);
  dev.recording = true;
  const watch = new CopyWatch().start();
  let status: number;
  try {
    status = (await ini.scsi(write10(2048, data.length / 512), { write: data })).status;
  } finally {
    watch.stop();
    dev.recording = false;
  }
  report(t, watch);
  t.equal(status, 0, '4 MiB write in 16 R2T bursts of 16 KiB Data-Out PDUs');
  t.same(dev.badWrites, []);
  t.equal(dev.writeSlices.reduce((n, s) => n + s.length, 0), data.length);
  t.equal(dev.writeSlices.filter((s) => !pooled.has(s.buffer)).length, 0, 'every slice is a view of a receive arena');
  t.same(watch.onRequestPath(CONTROL).filter((m) => m.bytes > BHS_LENGTH), [], 'nothing larger than a PDU header moved');
});

/**
 * Where the socket's reads cut a PDU is up to the kernel, so whether a real initiator's
 * headers straddle two receive chunks is luck. Here the cut is forced at every byte of the
 * BHS and of the header digest after it, for a SCSI Command, its Data-Out and a READ: the
 * initiator sends the first part, waits until the target has queued exactly those bytes as
 * one chunk, then sends the rest. Consecutive reads land side by side in one receive arena,
 * so the header is a view across both chunks, not a copy. (The traffic stays well inside the
 * connection's first arena: a cut where one arena ends and the next begins is still copied.)
 */
t.test('a PDU header cut at any byte by the socket reads costs no copy (digests on)', async (t) => {
  const small = await startBlockgate({ device: new PatternDevice(new MemoryBackend({ name: 'disk', size: 8 * MiB })) });
  t.teardown(() => small.stop());
  const ini = await TestInitiator.connect(small.port);
  t.teardown(() => ini.close());
  ini.socket.setNoDelay(true);
  await ini.login({ headerDigest: true, dataDigest: true });
  t.ok(ini.headerDigest && ini.dataDigest, 'digests negotiated');
  const dev = small.fabric.device('disk') as PatternDevice;
  // The connection's first read lands in its small idle arena and the next ones in a large
  // arena (fabric/buffers.ts): a header cut between those two is copied once. One command
  // first, so the cuts below fall inside one arena, where the claim is that nothing moves.
  t.equal((await ini.scsi(Buffer.alloc(6))).status, 0, 'TEST UNIT READY before the cuts');

  const queued = watchQueuedChunks();
  t.teardown(queued.restore);
  const chunks = queued.chunks;
  // Every PDU the initiator writes goes out in two parts cut at `cut`, the second only once
  // the target queued the first (the initiator writes one PDU at a time and waits for the answer).
  const write = ini.socket.write;
  let cut = 0;
  const firstParts: number[] = [];
  ini.socket.write = function (this: typeof ini.socket, bytes: Buffer) {
    const seen = chunks.length;
    const at = cut;
    queued.onPush = () => {
      if (chunks.length === seen) return;
      queued.onPush = null;
      firstParts.push(chunks[chunks.length - 1]!);
      write.call(ini.socket, bytes.subarray(at));
    };
    return write.call(ini.socket, bytes.subarray(0, at));
  } as typeof write;
  t.teardown(() => void (ini.socket.write = write));

  const BLOCK = 512;
  const cuts: number[] = [];
  for (let at = 1; at < BHS_LENGTH + 4; at++) cuts.push(at);
  const results: number[] = [];
  const readBack: boolean[] = [];
  dev.recording = true;
  const watch = new CopyWatch().start();
  try {
    for (const at of cuts) {
      cut = at;
      const data = image.subarray(at * 4096, at * 4096 + BLOCK);
      results.push((await ini.scsi(write10(at * 8, 1), { write: data })).status);
      const r = await ini.scsi(read10(at * 8, 1), { read: BLOCK });
      results.push(r.status);
      readBack.push(r.data.equals(data));
    }
  } finally {
    watch.stop();
    dev.recording = false;
    ini.socket.write = write;
  }
  report(t, watch);
  // Each WRITE: the command, then its Data-Out after the R2T; each READ: the command.
  t.same(firstParts, cuts.flatMap((at) => [at, at, at]), 'the target received every PDU cut where the initiator cut it');
  t.same(results, cuts.flatMap(() => [0, 0]), 'every command completed with GOOD');
  t.same(dev.badWrites, [], 'every Data-Out reached the device intact');
  t.equal(dev.writeSlices.filter((s) => !pooled.has(s.buffer)).length, 0, 'as views of receive arenas');
  t.same(readBack.filter((ok) => !ok), [], 'every READ returned what its WRITE stored');
  t.same(watch.onRequestPath(CONTROL), [], 'blockgate moved no bytes on the request path');
});
