/**
 * What one iSCSI session can make the target hold: the command window is a real queue
 * depth (MaxCmdSN moves on completion, immediate commands count), read data in flight and
 * unsent responses are capped as the NBD front end caps them, R2Ts wait for room in the
 * write budget, and no write larger than the advertised maximum transfer is buffered.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { FaultyDevice } from '../helpers/faulty.js';
import type { IscsiServerOptions } from '../../gateway/iscsi/server.js';
import { ensureBuilt, startMember } from '../helpers/blockgate-cli.js';
import { cdb16, read10, read16, senseOf, startBlockgate, TestInitiator, write16, type Blockgate } from '../helpers/iscsi.js';

const MiB = 1024 * 1024;
const NOP_IN = 0x20;

/** A target over a FaultyDevice of `size` bytes, and one logged-in session to it. */
async function session(t: Test, size = 64 * MiB, server: Partial<IscsiServerOptions> = {}) {
  const device = new FaultyDevice(new MemoryBackend({ name: 'disk', size }));
  const bg: Blockgate = await startBlockgate({ device, server });
  t.teardown(() => bg.stop());
  const ini = await TestInitiator.connect(bg.port);
  t.teardown(() => ini.close());
  await ini.login();
  return { device, ini };
}

async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** ExpCmdSN and MaxCmdSN as the target states them in a NOP-In. */
async function window(ini: TestInitiator): Promise<{ exp: number; max: number }> {
  const p = await ini.nop();
  if ((p.bhs[0]! & 0x3f) !== NOP_IN) throw new Error('expected a NOP-In');
  return { exp: p.bhs.readUInt32BE(28), max: p.bhs.readUInt32BE(32) };
}

t.test('the CmdSN window is the queue depth: MaxCmdSN moves on completion, not on receipt', async (t) => {
  const { device, ini } = await session(t, 64 * MiB, { queueDepth: 8 });
  const first = ini.cmdSN;
  t.same(await window(ini), { exp: first, max: first + 7 }, 'a fresh session may send 8 commands');

  device.hold('read');
  const tags = Array.from({ length: 8 }, (_, i) => ini.command(read10(i, 1), { read: 512 }));
  await until(() => device.held.read === 8, 'eight reads at the device');
  t.same(await window(ini), { exp: first + 8, max: first + 7 }, 'eight received, none answered: the window is closed');

  const beyond = ini.command(read10(100, 1), { read: 512 });
  const immediate = ini.command(read10(101, 1), { read: 512, immediate: true });
  const full = await ini.response(immediate);
  t.equal(full.bhs[3], 0x28, 'an immediate command with every slot taken: TASK SET FULL');
  await window(ini);
  t.equal(device.held.read, 8, 'the command beyond MaxCmdSN was ignored, as RFC 7143 asks');

  device.release();
  for (const tag of tags) t.equal((await ini.response(tag)).bhs[3], 0, 'answered once the device lets go');
  t.same(await window(ini), { exp: first + 8, max: first + 15 }, 'answers reopen the window');
  await t.rejects(ini.response(beyond, 200), 'the ignored command never gets an answer');
  ini.cmdSN = first + 8;
  t.equal((await ini.scsi(read10(100, 1), { read: 512 })).status, 0, 'the same CmdSN inside the window runs');
});

t.test('the default queue depth is 128', async (t) => {
  const { ini } = await session(t);
  const w = await window(ini);
  t.equal(w.max - w.exp + 1, 128);
});

t.test('write data is solicited only while it fits the session budget (64 MiB)', async (t) => {
  const { device, ini } = await session(t, 256 * MiB);
  device.hold('write');
  const blocks = (8 * MiB) / 512;
  const data = Buffer.alloc(8 * MiB, 0x5a);
  // The last eight wait for their first R2T until the first eight are written: no short timeout.
  const writes = Array.from({ length: 16 }, (_, i) => ini.scsi(write16(i * blocks, blocks), { write: data, timeoutMs: 120_000 }));
  await until(() => device.held.write === 8, 'eight 8 MiB writes at the device');
  await window(ini);
  await new Promise((r) => setTimeout(r, 200));
  t.equal(device.held.write, 8, 'the other eight got no R2T while 64 MiB of write data is held');
  device.release();
  for (const r of await Promise.all(writes)) t.equal(r.status, 0);
  t.equal(device.ops.write, 16, 'and all sixteen were written once room came back');
});

t.test('a write larger than the advertised maximum transfer (8 MiB) is refused before any data is asked for', async (t) => {
  const { ini } = await session(t);
  const blocks = (16 * MiB) / 512;
  const tag = ini.command(write16(0, blocks), { write: 16 * MiB });
  const answer = await ini.next((p) => p.bhs.readUInt32BE(16) === tag);
  t.equal(answer.bhs[0]! & 0x3f, 0x21, 'a SCSI Response, not an R2T');
  t.equal(answer.bhs[3], 0x02, 'CHECK CONDITION');
  t.equal(senseOf(answer.data.subarray(2))?.key, 0x05, 'ILLEGAL REQUEST');
  const limit = await ini.scsi(write16(0, (8 * MiB) / 512), { write: Buffer.alloc(8 * MiB, 1) });
  t.equal(limit.status, 0, 'exactly the maximum transfer is written');
});

t.test('a READ whose EDTL is shorter than its transfer reads no more than the EDTL', async (t) => {
  const { device, ini } = await session(t);
  device.resetCounters();
  const r = await ini.scsi(read16(0, (8 * MiB) / 512), { read: 4096 });
  t.equal(r.status, 0);
  t.equal(r.data.length, 4096);
  t.equal(r.flags & 0x04, 0x04, 'overflow residual reported');
  t.equal(r.residual, 8 * MiB - 4096, 'for the whole rest of the transfer');
  t.equal(device.bytes.read, 4096, 'only what the initiator takes was read');
});

t.test('VERIFY reads the medium in pieces of at most 1 MiB', async (t) => {
  const { device, ini } = await session(t);
  device.resetCounters();
  t.equal((await ini.scsi(cdb16(0x8f, 0, (8 * MiB) / 512))).status, 0);
  t.equal(device.bytes.read, 8 * MiB, 'the whole range was checked');
  t.ok(device.largest.read <= MiB, `largest read ${device.largest.read} bytes`);
});

t.test('300 pipelined 8 MiB READs whose responses are never read: the member stays small', async (t) => {
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'security-iscsi-rss-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const member = startMember(t, ['--data-dir', dir, '--nbd', '127.0.0.1:0']);
  const listen = await member.ready();
  const port = Number(/:(\d+) /.exec(listen.iscsi![0]!)![1]);
  const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${member.child.pid}/status`, 'utf8'))![1]) * 1024;

  const ini = await TestInitiator.connect(port);
  t.teardown(() => ini.close());
  await ini.login({ targetName: 'iqn.2026-11.dev.blockgate:demo' });
  await ini.scsi(read16(0, 1), { read: 512 });
  const before = rss();
  ini.socket.pause();
  const blocks = (8 * MiB) / 512;
  // All in one burst, as a pipelining initiator sends them: the target sees 300 at once.
  ini.socket.cork();
  for (let i = 0; i < 300; i++) ini.command(read16((i % 120) * blocks, blocks), { read: 8 * MiB });
  ini.socket.uncork();

  // Wait until the member's memory stops growing (2 s without a new high), then judge.
  let peak = before;
  let lastRise = Date.now();
  const started = Date.now();
  while (Date.now() - lastRise < 2000 && Date.now() - started < 60_000) {
    await new Promise((r) => setTimeout(r, 100));
    const now = rss();
    if (now > peak + MiB) [peak, lastRise] = [now, Date.now()];
  }
  const grew = peak - before;
  t.comment(`member RSS ${Math.round(before / MiB)} MiB before, peak ${Math.round(peak / MiB)} MiB`);
  t.ok(grew < 256 * MiB, `grew by ${Math.round(grew / MiB)} MiB (the caps allow 64 MiB in flight plus 4 MiB unsent)`);

  const other = await TestInitiator.connect(port);
  t.teardown(() => other.close());
  await other.login({ targetName: 'iqn.2026-11.dev.blockgate:demo' });
  t.equal((await other.scsi(read16(0, 8), { read: 4096 })).status, 0, 'another session is served meanwhile');
});
