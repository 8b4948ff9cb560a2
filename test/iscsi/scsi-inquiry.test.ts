import t from 'tap';
import { A, B, dataIn, makeTarget, senseOf, TARGET } from '../helpers/scsi-fixtures.js';

const GOOD = 0;

t.test('standard INQUIRY: SPC-4, TPGS both, identification strings', async (t) => {
  const f = makeTarget();
  const r = await f.run([0x12, 0, 0, 0, 255, 0]);
  const d = dataIn(r);
  t.equal(r.status, GOOD);
  t.equal(d.length, 96);
  t.equal(d[0], 0x00, 'direct access block device');
  t.equal(d[2], 0x06, 'SPC-4');
  t.equal(d[3]! & 0x0f, 2, 'response data format 2');
  t.equal(d[3]! & 0x10, 0x10, 'HISUP');
  t.equal(d[4], 91, 'additional length');
  t.equal((d[5]! >> 4) & 3, 3, 'TPGS implicit + explicit');
  t.equal(d[7]! & 0x02, 0x02, 'CMDQUE');
  t.equal(d.subarray(8, 16).toString(), 'BLOCKGAT');
  t.equal(d.subarray(16, 32).toString(), 'blockgate       ');
  t.equal(d.readUInt16BE(58), 0x00a0, 'SAM-5 version descriptor');
  t.equal(d.readUInt16BE(60), 0x0460, 'SPC-4 version descriptor');
  const short = dataIn(await f.run([0x12, 0, 0, 0, 36, 0]));
  t.equal(short.length, 36, 'truncated to the allocation length');
  const none = await f.run([0x12, 0, 0, 0, 0, 0]);
  t.equal(dataIn(none).length, 0);
});

t.test('INQUIRY errors and a missing LUN', async (t) => {
  const f = makeTarget();
  const r = await f.run([0x12, 0, 0x80, 0, 255, 0]);
  t.same(senseOf(r), [5, 0x24, 0], 'page code without EVPD');
  t.equal(r.sense![15], 0xc0, 'SKSV and C/D: field in the CDB');
  t.equal(r.sense!.readUInt16BE(16), 2, 'field pointer to byte 2');
  t.same(senseOf(await f.run([0x12, 1, 0x99, 0, 255, 0])), [5, 0x24, 0], 'unknown VPD page');
  const missing = dataIn(await f.run([0x12, 0, 0, 0, 255, 0], { lun: 7 }));
  t.equal(missing[0], 0x7f, 'peripheral qualifier 3 / type 1Fh for a LUN that does not exist');
  t.same(senseOf(await f.run([0, 0, 0, 0, 0, 0], { lun: 7 })), [5, 0x25, 0], 'LOGICAL UNIT NOT SUPPORTED');
  t.same(senseOf(await f.run([0xc7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), [5, 0x20, 0], 'invalid opcode');
  t.same(senseOf(await f.run([0x12, 0, 0, 0, 255, 0x04])), [5, 0x24, 0], 'NACA is not supported');
});

t.test('VPD pages: supported list, serial, device identification', async (t) => {
  const f = makeTarget();
  const p0 = dataIn(await f.run([0x12, 1, 0x00, 0, 255, 0]));
  t.same([...p0], [0, 0, 0, 6, 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2]);
  const p80 = dataIn(await f.run([0x12, 1, 0x80, 0, 255, 0]));
  t.equal(p80[1], 0x80);
  t.match(p80.subarray(4, 4 + p80.readUInt16BE(2)).toString(), /^[0-9a-f]{32}$/);

  const p83 = dataIn(await f.run([0x12, 1, 0x83, 0, 255, 0], { nexus: { ...A, relativeTargetPortId: 3, targetPortGroupId: 1 } }));
  t.equal(p83.readUInt16BE(2), p83.length - 4);
  const designators: Array<{ b0: number; b1: number; value: Buffer }> = [];
  for (let at = 4; at < p83.length; at += 4 + p83[at + 3]!) {
    designators.push({ b0: p83[at]!, b1: p83[at + 1]!, value: p83.subarray(at + 4, at + 4 + p83[at + 3]!) });
  }
  const naa = designators.find((d) => (d.b1 & 0x0f) === 3)!;
  t.equal(naa.b0, 0x01, 'binary');
  t.equal(naa.b1, 0x03, 'LU association, NAA');
  t.equal(naa.value.length, 16);
  t.equal(naa.value[0]! >> 4, 6, 'NAA 6');
  const rel = designators.find((d) => d.b1 === 0x94)!;
  t.equal(rel.b0, 0x51, 'iSCSI, PIV, binary');
  t.equal(rel.value.readUInt16BE(2), 3, 'relative target port');
  const tpg = designators.find((d) => d.b1 === 0x95)!;
  t.equal(tpg.value.readUInt16BE(2), 1, 'target port group');
  const name = designators.find((d) => d.b1 === 0xa8)!;
  t.equal(name.b0, 0x53, 'UTF-8');
  t.equal(name.value.length % 4, 0);
  t.equal(name.value.toString().replace(/\0+$/, ''), TARGET);

  // Stable: the same target and export give the same identifier; another export does not.
  const again = dataIn(await makeTarget().run([0x12, 1, 0x83, 0, 255, 0]));
  t.same(again.subarray(8, 24), naa.value);
});

t.test('VPD B0, B1, B2 follow the device', async (t) => {
  const f = makeTarget();
  const b0 = dataIn(await f.run([0x12, 1, 0xb0, 0, 255, 0]));
  t.equal(b0.readUInt16BE(2), 0x3c);
  t.equal(b0[4]! & 1, 0, 'WSNZ clear: WRITE SAME of zero blocks writes to the end');
  t.equal(b0[5], 255, 'max compare and write');
  t.equal(b0.readUInt16BE(6), 8, 'optimal granularity: 4096 preferred / 512');
  t.equal(b0.readUInt32BE(8), 16384, 'max transfer 8 MiB');
  t.equal(b0.readUInt32BE(20), 0xffffffff, 'max unmap LBA count');
  t.equal(b0.readUInt32BE(24), 256, 'max unmap descriptors');
  t.ok(b0.readBigUInt64BE(36) > 0n, 'max write same length');
  const b1 = dataIn(await f.run([0x12, 1, 0xb1, 0, 255, 0]));
  t.equal(b1.readUInt16BE(4), 1, 'non-rotating medium');
  const b2 = dataIn(await f.run([0x12, 1, 0xb2, 0, 255, 0]));
  t.equal(b2[5]! & 0xe4, 0xe4, 'LBPU, LBPWS, LBPWS10, LBPRZ');
  t.equal(b2[6]! & 7, 2, 'thin provisioned');
  const ro = makeTarget({ readOnly: true });
  const b2ro = dataIn(await ro.run([0x12, 1, 0xb2, 0, 255, 0]));
  t.equal(b2ro[5], 0, 'read-only: no provisioning');
});

t.test('READ CAPACITY (10) and (16)', async (t) => {
  const f = makeTarget({ size: 8 * 1024 * 1024 });
  const rc10 = dataIn(await f.run([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
  t.equal(rc10.readUInt32BE(0), 16383, 'last LBA');
  t.equal(rc10.readUInt32BE(4), 512);
  t.same(senseOf(await f.run([0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0])), [5, 0x24, 0], 'LBA without PMI');
  const rc16 = dataIn(await f.run([0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0]));
  t.equal(rc16.length, 32);
  t.equal(rc16.readBigUInt64BE(0), 16383n);
  t.equal(rc16.readUInt32BE(8), 512);
  t.equal(rc16[13]! & 0x0f, 0, 'one logical block per physical block');
  t.equal(rc16[14]! & 0xc0, 0xc0, 'LBPME and LBPRZ');
  t.equal(dataIn(await f.run([0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0])).length, 12);
  const big = makeTarget({ size: 8 * 1024 * 1024, blockSize: 4096 });
  t.equal(dataIn(await big.run([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0])).readUInt32BE(4), 4096, 'per-LUN 4096 block size');
  t.equal(dataIn(await big.run([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0])).readUInt32BE(0), 2047);
});

t.test('REPORT LUNS', async (t) => {
  const base = makeTarget();
  const f = makeTarget({ extraLuns: new Map([[300, { device: base.device, exportName: 'second' }]]) });
  const r = dataIn(await f.run([0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]));
  t.equal(r.readUInt32BE(0), 16);
  t.same([...r.subarray(8, 16)], [0, 0, 0, 0, 0, 0, 0, 0], 'LUN 0');
  t.same([...r.subarray(16, 24)], [0x41, 0x2c, 0, 0, 0, 0, 0, 0], 'LUN 300, flat space addressing');
  t.same(senseOf(await f.run([0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0])), [5, 0x24, 0], 'allocation length < 16');
  t.same(senseOf(await f.run([0xa0, 0, 0x05, 0, 0, 0, 0, 0, 1, 0, 0, 0])), [5, 0x24, 0], 'bad SELECT REPORT');
  const fromMissing = await f.run([0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], { lun: 9 });
  t.equal(fromMissing.status, GOOD, 'answered through a LUN that does not exist');
  f.target.addLun(5, { device: base.device, exportName: 'third' });
  t.same(senseOf(await f.run([0, 0, 0, 0, 0, 0], { nexus: A })), [6, 0x3f, 0x0e], 'REPORTED LUNS DATA HAS CHANGED');
});

t.test('MODE SENSE and MODE SELECT', async (t) => {
  const f = makeTarget();
  const all6 = dataIn(await f.run([0x1a, 0, 0x3f, 0, 255, 0]));
  t.equal(all6[0], all6.length - 1, 'mode data length');
  t.equal(all6[2]! & 0x10, 0x10, 'DPOFUA');
  t.equal(all6[3], 8, 'short block descriptor');
  t.equal(all6.readUInt32BE(4), 16384, 'number of blocks');
  t.equal(all6.readUIntBE(9, 3), 512, 'block length');
  const pages = all6.subarray(12);
  t.same([pages[0], pages[1]], [0x08, 0x12], 'caching page first');
  t.equal(pages[2]! & 0x04, 0x04, 'WCE on: the device has a volatile cache to flush');
  t.same([pages[20], pages[21]], [0x0a, 0x0a], 'control page');
  t.same([pages[32], pages[33]], [0x1c, 0x0a], 'informational exceptions page');

  const caching10 = dataIn(await f.run([0x5a, 0x08, 0x08, 0, 0, 0, 0, 0, 255, 0]));
  t.equal(caching10.readUInt16BE(0), caching10.length - 2);
  t.equal(caching10.readUInt16BE(6), 0, 'DBD: no block descriptor');
  t.same([caching10[8], caching10[9]], [0x08, 0x12]);
  const long = dataIn(await f.run([0x5a, 0x10, 0x08, 0, 0, 0, 0, 0, 255, 0]));
  t.equal(long[4]! & 1, 1, 'LONGLBA');
  t.equal(long.readUInt16BE(6), 16);
  t.equal(long.readBigUInt64BE(8), 16384n);

  const changeable = dataIn(await f.run([0x1a, 0x08, 0x48, 0, 255, 0]));
  t.equal(changeable[6], 0x04, 'only WCE is changeable');
  t.same(senseOf(await f.run([0x1a, 0, 0xc8, 0, 255, 0])), [5, 0x39, 0], 'saved values not supported');
  t.same(senseOf(await f.run([0x1a, 0, 0x19, 0, 255, 0])), [5, 0x24, 0], 'unknown page');
  t.equal(dataIn(await f.run([0x1a, 0, 0x3f, 0, 4, 0])).length, 4, 'allocation length');

  // Turn the write cache off through MODE SELECT(6): header + caching page.
  const page = Buffer.from(dataIn(await f.run([0x1a, 0x08, 0x08, 0, 255, 0])).subarray(4));
  page[2] = page[2]! & ~0x04;
  const list = Buffer.concat([Buffer.alloc(4), page]);
  t.equal((await f.run([0, 0, 0, 0, 0, 0], { nexus: B })).status, GOOD, 'B is logged in');
  const sel = await f.run([0x15, 0x10, 0, 0, list.length, 0], { data: list });
  t.equal(sel.status, GOOD);
  t.equal(f.target.logicalUnit(0)!.writeCacheEnabled, false);
  t.equal(dataIn(await f.run([0x1a, 0x08, 0x08, 0, 255, 0]))[6]! & 0x04, 0, 'WCE now off');
  t.same(senseOf(await f.run([0, 0, 0, 0, 0, 0], { nexus: B })), [6, 0x2a, 0x01], 'others see MODE PARAMETERS CHANGED');
  t.equal((await f.run([0, 0, 0, 0, 0, 0], { nexus: A })).status, GOOD, 'not the one who changed them');

  const bad = Buffer.from(list);
  bad[4 + 3] = 0x55; // a byte of the caching page that cannot change
  const r = await f.run([0x15, 0x10, 0, 0, bad.length, 0], { data: bad });
  t.same(senseOf(r), [5, 0x26, 0], 'INVALID FIELD IN PARAMETER LIST');
  t.equal(r.sense![15], 0x80, 'pointer into the parameter list');
  t.equal(r.sense!.readUInt16BE(16), 7);
  t.same(senseOf(await f.run([0x15, 0x11, 0, 0, list.length, 0], { data: list })), [5, 0x24, 0], 'SP=1 refused');
  const wrongLength = Buffer.from(list);
  wrongLength[5] = 0x10;
  t.same(senseOf(await f.run([0x15, 0x10, 0, 0, list.length, 0], { data: wrongLength })), [5, 0x26, 0], 'page length mismatch');
});

t.test('REPORT SUPPORTED OPERATION CODES', async (t) => {
  const f = makeTarget();
  const all = dataIn(await f.run([0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0]));
  const n = all.readUInt32BE(0);
  t.equal(n % 8, 0);
  const opcodes = new Set<number>();
  for (let at = 4; at < 4 + n; at += 8) opcodes.add(all[at]!);
  for (const opc of [0x00, 0x03, 0x12, 0x28, 0x2a, 0x35, 0x41, 0x42, 0x5e, 0x5f, 0x89, 0x9e, 0xa0, 0xa3, 0xa4]) {
    t.ok(opcodes.has(opc), `lists 0x${opc.toString(16)}`);
  }
  const withTimeouts = dataIn(await f.run([0xa3, 0x0c, 0x80, 0, 0, 0, 0, 0, 0x10, 0, 0, 0]));
  t.equal(withTimeouts.readUInt32BE(0), (n / 8) * 20, 'RCTD adds a 12-byte timeouts descriptor each');
  const read10 = dataIn(await f.run([0xa3, 0x0c, 0x01, 0x28, 0, 0, 0, 0, 1, 0, 0, 0]));
  t.equal(read10[1]! & 7, 3, 'supported');
  t.equal(read10.readUInt16BE(2), 10, 'CDB size');
  t.equal(read10[4], 0x28, 'usage data starts with the opcode');
  const rc16 = dataIn(await f.run([0xa3, 0x0c, 0x02, 0x9e, 0, 0x10, 0, 0, 1, 0, 0, 0]));
  t.equal(rc16[1]! & 7, 3);
  t.equal(rc16.readUInt16BE(2), 16);
  const unsupported = dataIn(await f.run([0xa3, 0x0c, 0x01, 0xc0, 0, 0, 0, 0, 1, 0, 0, 0]));
  t.equal(unsupported[1]! & 7, 1, 'not supported');
  t.same(senseOf(await f.run([0xa3, 0x0c, 0x01, 0x9e, 0, 0, 0, 0, 1, 0, 0, 0])), [5, 0x24, 0], 'opcode with service actions needs option 2');
  t.same(senseOf(await f.run([0xa3, 0x0c, 0x02, 0x28, 0, 0, 0, 0, 1, 0, 0, 0])), [5, 0x24, 0], 'opcode without service actions');
});

t.test('unit attentions: INQUIRY does not consume them, REQUEST SENSE does', async (t) => {
  const f = makeTarget();
  await f.run([0, 0, 0, 0, 0, 0], { nexus: A });
  f.target.targetReset();
  t.equal((await f.run([0x12, 0, 0, 0, 36, 0], { nexus: A })).status, GOOD, 'INQUIRY runs');
  t.equal((await f.run([0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], { nexus: A })).status, GOOD, 'REPORT LUNS runs');
  const rs = dataIn(await f.run([0x03, 0, 0, 0, 18, 0], { nexus: A }));
  t.same([rs[2]! & 0x0f, rs[12], rs[13]], [6, 0x29, 0x00], 'REQUEST SENSE returns the unit attention');
  t.equal((await f.run([0, 0, 0, 0, 0, 0], { nexus: A })).status, GOOD, 'and it is gone');
  f.target.targetReset();
  t.same(senseOf(await f.run([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], { nexus: A })), [6, 0x29, 0x00], 'a media command reports it instead of running');
  t.equal((await f.run([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], { nexus: A })).status, GOOD);
});
