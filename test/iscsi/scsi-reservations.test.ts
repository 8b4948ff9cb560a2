import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import t from 'tap';
import { LmdbReservationStore } from '../../gateway/scsi/reservation-store-lmdb.js';
import type { Nexus } from '../../gateway/scsi/types.js';
import { A, B, cdb10, dataIn, makeTarget, nexus, senseOf, type Fixture } from '../helpers/scsi-fixtures.js';

const GOOD = 0;
const CONFLICT = 0x18;
const C = nexus('iqn.2026-11.test:host3', '400001370002');

const WE = 1;
const EA = 3;
const WE_RO = 5;
const EA_AR = 8;

function prout(f: Fixture, n: Nexus, sa: number, opts: { key?: bigint; sakey?: bigint; type?: number; aptpl?: boolean; allTgPt?: boolean } = {}) {
  const list = Buffer.alloc(24);
  list.writeBigUInt64BE(opts.key ?? 0n, 0);
  list.writeBigUInt64BE(opts.sakey ?? 0n, 8);
  list[20] = (opts.aptpl ? 1 : 0) | (opts.allTgPt ? 4 : 0);
  return f.run([0x5f, sa, opts.type ?? 0, 0, 0, 0, 0, 0, 24, 0], { nexus: n, data: list });
}

function prin(f: Fixture, n: Nexus, sa: number) {
  return f.run([0x5e, sa, 0, 0, 0, 0, 0, 0x10, 0, 0], { nexus: n }).then(dataIn);
}

const read = (f: Fixture, n: Nexus) => f.run(cdb10(0x28, 0, 1), { nexus: n }).then((r) => r.status);
const write = (f: Fixture, n: Nexus) => f.run(cdb10(0x2a, 0, 1), { nexus: n, data: Buffer.alloc(512) }).then((r) => r.status);
const tur = (f: Fixture, n: Nexus) => f.run([0, 0, 0, 0, 0, 0], { nexus: n });

function keys(d: Buffer): bigint[] {
  const out: bigint[] = [];
  for (let at = 8; at < 8 + d.readUInt32BE(4); at += 8) out.push(d.readBigUInt64BE(at));
  return out;
}

t.test('RESERVE / RELEASE (6) and (10) between two nexuses', async (t) => {
  const f = makeTarget();
  t.equal((await f.run([0x16, 0, 0, 0, 0, 0], { nexus: A })).status, GOOD);
  t.equal(await read(f, B), CONFLICT, 'other nexus: conflict');
  t.equal((await f.run([0x12, 0, 0, 0, 36, 0], { nexus: B })).status, GOOD, 'INQUIRY allowed');
  t.equal((await f.run([0x16, 0, 0, 0, 0, 0], { nexus: B })).status, CONFLICT, 'second reservation');
  t.equal((await f.run([0x17, 0, 0, 0, 0, 0], { nexus: B })).status, GOOD, 'RELEASE by non-holder: GOOD, no effect');
  t.equal(await write(f, B), CONFLICT);
  t.equal(await write(f, A), GOOD, 'holder writes');
  t.equal((await f.run([0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0], { nexus: A })).status, GOOD);
  t.equal(await write(f, B), GOOD, 'released');
  t.equal((await f.run([0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0], { nexus: B })).status, GOOD);
  f.target.lunReset(0);
  t.same(senseOf(await tur(f, A)), [6, 0x29, 0x03], 'LUN reset unit attention');
  t.equal(await write(f, A), GOOD, 'LUN reset dropped the reservation');
  t.same(senseOf(await tur(f, B)), [6, 0x29, 0x03], 'B too');
  await f.run([0x16, 0, 0, 0, 0, 0], { nexus: A });
  t.equal(await write(f, B), CONFLICT);
  f.target.nexusLost(A);
  t.equal(await write(f, B), GOOD, 'nexus loss drops it too');
});

t.test('persistent reservations: register, reserve, conflict, release', async (t) => {
  const f = makeTarget();
  t.equal((await prout(f, A, 0, { sakey: 0xaan })).status, GOOD, 'A registers');
  t.equal((await prout(f, B, 0, { sakey: 0xbbn })).status, GOOD, 'B registers');
  t.equal((await prout(f, B, 0, { key: 0x99n, sakey: 0xbcn })).status, CONFLICT, 'wrong key');
  t.equal((await prout(f, C, 0, { key: 0x1n, sakey: 0xccn })).status, CONFLICT, 'unregistered with non-zero key');
  const k = await prin(f, A, 0);
  t.equal(k.readUInt32BE(0), 2, 'PRGENERATION counts registrations');
  t.same(keys(k), [0xaan, 0xbbn]);
  t.equal((await f.run([0x16, 0, 0, 0, 0, 0], { nexus: A })).status, CONFLICT, 'RESERVE(6) with registrations');

  t.equal((await prout(f, C, 1, { key: 0xccn, type: WE })).status, CONFLICT, 'unregistered cannot reserve');
  t.equal((await prout(f, A, 1, { key: 0xaan, type: WE })).status, GOOD, 'A reserves write exclusive');
  t.equal((await prout(f, A, 1, { key: 0xaan, type: WE })).status, GOOD, 'again: no-op');
  t.equal((await prout(f, B, 1, { key: 0xbbn, type: WE })).status, CONFLICT, 'B cannot');
  t.same(senseOf(await prout(f, A, 1, { key: 0xaan, type: 2 })), [5, 0x24, 0], 'invalid type');
  const rr = await prin(f, B, 1);
  t.equal(rr.readUInt32BE(4), 16);
  t.equal(rr.readBigUInt64BE(8), 0xaan, 'holder key');
  t.equal(rr[21], WE);
  t.equal(await read(f, B), GOOD, 'write exclusive: others read');
  t.equal(await write(f, B), CONFLICT, 'but do not write');
  t.equal(await write(f, C), CONFLICT);
  t.equal(await write(f, A), GOOD);
  t.equal((await tur(f, C)).status, GOOD, 'TEST UNIT READY allowed');
  t.same(senseOf(await prout(f, A, 2, { key: 0xaan, type: EA })), [5, 0x26, 0x04], 'release with the wrong type');
  t.equal((await prout(f, B, 2, { key: 0xbbn, type: WE })).status, GOOD, 'release by a non-holder is a no-op');
  t.equal(await write(f, B), CONFLICT);
  t.equal((await prout(f, A, 2, { key: 0xaan, type: WE })).status, GOOD);
  t.equal(await write(f, B), GOOD, 'released');

  t.equal((await prout(f, A, 1, { key: 0xaan, type: EA })).status, GOOD, 'exclusive access');
  t.equal(await read(f, B), CONFLICT, 'no reads either');
  t.equal((await f.run([0x12, 0, 0, 0, 36, 0], { nexus: B })).status, GOOD, 'INQUIRY allowed');
  t.equal((await f.run([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], { nexus: B })).status, GOOD, 'READ CAPACITY allowed');
  t.equal((await prout(f, A, 0, { key: 0xaan, sakey: 0n })).status, GOOD, 'holder unregisters');
  t.equal((await prin(f, B, 1)).readUInt32BE(4), 0, 'which releases the reservation');
  t.equal(await read(f, B), GOOD);
});

t.test('registrants-only and all-registrants types', async (t) => {
  const f = makeTarget();
  await prout(f, A, 0, { sakey: 1n });
  await prout(f, B, 0, { sakey: 2n });
  await tur(f, C);
  t.equal((await prout(f, A, 1, { key: 1n, type: WE_RO })).status, GOOD);
  t.equal(await write(f, B), GOOD, 'registrant writes');
  t.equal(await write(f, C), CONFLICT, 'non-registrant does not');
  t.equal(await read(f, C), GOOD);
  t.equal((await prout(f, A, 2, { key: 1n, type: WE_RO })).status, GOOD);
  t.same(senseOf(await tur(f, B)), [6, 0x2a, 0x04], 'RESERVATIONS RELEASED to the other registrants');

  t.equal((await prout(f, A, 1, { key: 1n, type: EA_AR })).status, GOOD);
  t.equal((await prout(f, B, 1, { key: 2n, type: EA_AR })).status, GOOD, 'every registrant holds it');
  t.equal(await read(f, C), CONFLICT);
  t.equal(await read(f, B), GOOD);
  const rr = await prin(f, A, 1);
  t.equal(rr.readBigUInt64BE(8), 0n, 'all-registrants: key reported as zero');
  t.equal((await prout(f, A, 0, { key: 1n, sakey: 0n })).status, GOOD, 'A leaves');
  t.equal((await prin(f, B, 1)).readUInt32BE(4), 16, 'reservation stays while a registrant remains');
  t.equal((await prout(f, B, 0, { key: 2n, sakey: 0n })).status, GOOD);
  t.equal((await prin(f, B, 1)).readUInt32BE(4), 0, 'gone with the last one');
});

t.test('PREEMPT, PREEMPT AND ABORT, CLEAR', async (t) => {
  const f = makeTarget();
  await prout(f, A, 0, { sakey: 0xan });
  await prout(f, B, 0, { sakey: 0xbn });
  await tur(f, C);
  await prout(f, A, 1, { key: 0xan, type: WE });
  t.equal((await prout(f, B, 4, { key: 0xbn, sakey: 0xan, type: EA })).status, GOOD, 'B preempts A');
  t.same(keys(await prin(f, B, 0)), [0xbn], 'A unregistered');
  const rr = await prin(f, B, 1);
  t.equal(rr.readBigUInt64BE(8), 0xbn);
  t.equal(rr[21], EA, 'new type');
  t.same(senseOf(await tur(f, A)), [6, 0x2a, 0x05], 'A: REGISTRATIONS PREEMPTED');
  t.equal(await read(f, A), CONFLICT);
  t.equal((await prout(f, B, 4, { key: 0xbn, sakey: 0x77n, type: EA })).status, CONFLICT, 'preempting a key nobody has');
  t.same(senseOf(await prout(f, B, 4, { key: 0xbn, sakey: 0n, type: EA })), [5, 0x26, 0], 'zero key without all-registrants');

  await prout(f, A, 0, { sakey: 0xan });
  t.equal((await prout(f, B, 5, { key: 0xbn, sakey: 0xan, type: EA })).status, GOOD, 'PREEMPT AND ABORT of a registrant only');
  t.same(keys(await prin(f, B, 0)), [0xbn]);

  await prout(f, C, 0, { sakey: 0xcn });
  const before = (await prin(f, C, 0)).readUInt32BE(0);
  t.equal((await prout(f, C, 3, { key: 0xcn })).status, GOOD, 'CLEAR');
  const after = await prin(f, C, 0);
  t.same(keys(after), []);
  t.equal(after.readUInt32BE(0), before + 1, 'generation');
  t.equal((await prin(f, C, 1)).readUInt32BE(4), 0);
  t.same(senseOf(await tur(f, B)), [6, 0x2a, 0x03], 'B: RESERVATIONS PREEMPTED');
  t.same(senseOf(await tur(f, A)), [6, 0x2a, 0x05], 'A was preempted by PREEMPT AND ABORT');
  t.equal(await write(f, A), GOOD);
});

t.test('REPORT CAPABILITIES and READ FULL STATUS', async (t) => {
  const f = makeTarget();
  const caps = await prin(f, A, 2);
  t.equal(caps.readUInt16BE(0), 8);
  t.equal(caps[2]! & 0x15, 0x15, 'CRH, ATP_C, PTPL_C');
  t.equal(caps[3]! & 0x80, 0x80, 'TMV');
  t.equal(caps[4], 0xea, 'WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX');
  t.equal(caps[5], 0x01, 'EX_AC_AR');
  await prout(f, A, 0, { sakey: 5n, aptpl: true });
  await prout(f, B, 0, { sakey: 6n, allTgPt: true, aptpl: true });
  await prout(f, A, 1, { key: 5n, type: WE });
  t.equal((await prin(f, A, 2))[3]! & 1, 1, 'PTPL_A');
  const fs = await prin(f, A, 3);
  const len = fs.readUInt32BE(4);
  const seen: Array<{ key: bigint; holder: boolean; atp: boolean; name: string }> = [];
  for (let at = 8; at < 8 + len; ) {
    const tidLen = fs.readUInt32BE(at + 20);
    const tid = fs.subarray(at + 24, at + 24 + tidLen);
    t.equal(tid[0], 0x45, 'iSCSI initiator port TransportID');
    seen.push({
      key: fs.readBigUInt64BE(at),
      holder: (fs[at + 12]! & 1) === 1,
      atp: (fs[at + 12]! & 2) === 2,
      name: tid.subarray(4, 4 + tid.readUInt16BE(2)).toString().replace(/\0+$/, ''),
    });
    at += 24 + tidLen;
  }
  t.same(seen, [
    { key: 5n, holder: true, atp: false, name: 'iqn.2026-11.test:host1,i,0x400001370000' },
    { key: 6n, holder: false, atp: true, name: 'iqn.2026-11.test:host2,i,0x400001370001' },
  ]);
  t.same(senseOf(await f.run([0x5f, 0, 0, 0, 0, 0, 0, 0, 20, 0], { nexus: A, data: Buffer.alloc(20) })), [5, 0x1a, 0], 'parameter list length');
  t.same(senseOf(await f.run([0x5f, 7, 0, 0, 0, 0, 0, 0, 24, 0], { nexus: A, data: Buffer.alloc(24) })), [5, 0x24, 0], 'REGISTER AND MOVE not supported');
});

t.test('APTPL registrations survive a restart in LMDB', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'scsi-pr-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let root = open({ path: join(dir, 'db') });
  let f = makeTarget({ store: new LmdbReservationStore(root) });
  await prout(f, A, 0, { sakey: 0x1234n, aptpl: true });
  await prout(f, B, 0, { sakey: 0x5678n, aptpl: true });
  await prout(f, A, 1, { key: 0x1234n, type: WE_RO });
  f.target.close();
  await root.close();

  root = open({ path: join(dir, 'db') });
  f = makeTarget({ store: new LmdbReservationStore(root) });
  t.same(keys(await prin(f, B, 0)), [0x1234n, 0x5678n], 'registrations restored');
  const rr = await prin(f, B, 1);
  t.equal(rr.readBigUInt64BE(8), 0x1234n);
  t.equal(rr[21], WE_RO, 'reservation restored');
  t.equal(await write(f, C), CONFLICT, 'and enforced');
  t.equal(await write(f, B), GOOD);

  // Without APTPL the state is gone after a restart (SPC-4 5.13.5).
  await prout(f, A, 0, { key: 0x1234n, sakey: 0x1234n, aptpl: false });
  f.target.close();
  await root.close();
  root = open({ path: join(dir, 'db') });
  f = makeTarget({ store: new LmdbReservationStore(root) });
  t.same(keys(await prin(f, B, 0)), [], 'not persisted without APTPL');
  await root.close();
});
