/** PRE-FETCH, ORWRITE, VERIFY(12) / WRITE AND VERIFY(12) and WRITE SAME of zero blocks, byte by byte. */
import t from 'tap';
import { cdb10, cdb16, dataIn, makeTarget, senseOf } from '../helpers/scsi-fixtures.js';

const GOOD = 0;
const BLOCKS = 16384; // the fixture's 8 MiB at 512-byte blocks

function cdb12(opcode: number, lba: number, blocks: number, flags = 0): number[] {
  const b = Buffer.alloc(12);
  b[0] = opcode;
  b[1] = flags;
  b.writeUInt32BE(lba, 2);
  b.writeUInt32BE(blocks, 6);
  return [...b];
}

t.test('PRE-FETCH(10)/(16) advise the device of the range', async (t) => {
  const f = makeTarget();
  t.equal((await f.run(cdb10(0x34, 10, 4))).status, GOOD, 'PRE-FETCH(10): GOOD, not CONDITION MET');
  t.equal(f.fault.ops.cache, 1);
  t.equal(f.fault.bytes.cache, 4 * 512, 'the CDB range in bytes');
  f.fault.resetCounters();
  t.equal((await f.run(cdb16(0x90, BLOCKS - 8, 0))).status, GOOD, 'PRE-FETCH(16) of zero blocks');
  t.equal(f.fault.bytes.cache, 8 * 512, 'zero PREFETCH LENGTH: up to the last LBA');
  t.equal((await f.run(cdb10(0x34, 0, 1, 0x02))).status, GOOD, 'IMMED');

  t.same(senseOf(await f.run(cdb10(0x34, BLOCKS + 1, 0))), [5, 0x21, 0], 'zero blocks past the end');
  t.same(senseOf(await f.run(cdb10(0x34, BLOCKS - 1, 2))), [5, 0x21, 0], 'crosses the end');
  t.same(senseOf(await f.run(cdb16(0x90, 2 ** 63, 1))), [5, 0x21, 0], 'LBA 2^63');
  t.same(senseOf(await f.run(cdb16(0x90, 0xffffffffffff, 256))), [5, 0x21, 0], 'huge LBA');

  f.fault.always.set('cache', 'EIO');
  const failed = await f.run(cdb10(0x34, 7, 1));
  t.same(senseOf(failed), [3, 0x11, 0], 'a failed prefetch without IMMED is a read error');
  t.equal(failed.sense!.readUInt32BE(3), 7, 'INFORMATION: the LBA');
  t.equal((await f.run(cdb10(0x34, 7, 1, 0x02))).status, GOOD, 'with IMMED the status is already GOOD');
});

t.test('ORWRITE(16) ORs the data-out into the medium', async (t) => {
  const f = makeTarget();
  await f.run(cdb10(0x2a, 20, 2), { data: Buffer.alloc(1024, 0x0f) });
  const data = Buffer.alloc(1024, 0x30);
  data[0] = 0xc0;
  data[1023] = 0x01;
  const r = await f.run(cdb16(0x8b, 20, 2), { data });
  t.equal(r.status, GOOD);
  t.equal(r.dataOutLength, 1024);
  const expected = Buffer.alloc(1024, 0x3f);
  expected[0] = 0xcf;
  expected[1023] = 0x0f;
  t.same(dataIn(await f.run(cdb10(0x28, 20, 2))), expected, 'medium OR data-out');
  t.equal((await f.run(cdb16(0x8b, BLOCKS - 1, 1, 0x18), { data: Buffer.alloc(512, 0xa5) })).status, GOOD, 'DPO+FUA at the last LBA');
  t.same(dataIn(await f.run(cdb10(0x28, BLOCKS - 1, 1))), Buffer.alloc(512, 0xa5));

  t.equal((await f.run(cdb16(0x8b, 0, 0))).status, GOOD, 'zero blocks');
  t.same(senseOf(await f.run(cdb16(0x8b, BLOCKS + 1, 0))), [5, 0x21, 0], 'zero blocks past the end');
  t.same(senseOf(await f.run(cdb16(0x8b, BLOCKS - 1, 2), { data: Buffer.alloc(1024) })), [5, 0x21, 0], 'crosses the end');
  t.same(senseOf(await f.run(cdb16(0x8b, 2 ** 63, 1), { data: Buffer.alloc(512) })), [5, 0x21, 0], 'LBA 2^63');
  for (let orprotect = 1; orprotect < 8; orprotect++) {
    const p = await f.run(cdb16(0x8b, 0, 1, orprotect << 5), { data: Buffer.alloc(512) });
    t.same(senseOf(p), [5, 0x24, 0], `ORPROTECT ${orprotect}`);
  }

  // EDTL shorter than the CDB: only the whole blocks received are ORed in.
  await f.run(cdb10(0x2a, 40, 2), { data: Buffer.alloc(1024, 0x01) });
  const short = await f.run(cdb16(0x8b, 40, 2), { data: Buffer.alloc(512 + 100, 0x10) });
  t.equal(short.status, GOOD);
  t.equal(short.dataOutLength, 1024, 'the transport reports the residual from the CDB length');
  t.same(dataIn(await f.run(cdb10(0x28, 40, 2))), Buffer.concat([Buffer.alloc(512, 0x11), Buffer.alloc(512, 0x01)]));

  const ro = makeTarget({ readOnly: true });
  t.same(senseOf(await ro.run(cdb16(0x8b, 0, 1), { data: Buffer.alloc(512) })), [7, 0x27, 0], 'write protected');
});

t.test('concurrent ORWRITEs of one range lose no bits', async (t) => {
  const f = makeTarget();
  // Slow device: without the range lock both would read the zeroes before either writes.
  f.fault.delayMs = 20;
  const bits = [0x01, 0x02, 0x04, 0x08];
  const results = await Promise.all(bits.map((b) => f.run(cdb16(0x8b, 60, 4), { data: Buffer.alloc(2048, b) })));
  t.same(results.map((r) => r.status), [GOOD, GOOD, GOOD, GOOD]);
  f.fault.delayMs = 0;
  t.same(dataIn(await f.run(cdb10(0x28, 60, 4))), Buffer.alloc(2048, 0x0f), 'every ORWRITE left its bit');
});

t.test('VERIFY(12) and WRITE AND VERIFY(12)', async (t) => {
  const f = makeTarget();
  const data = Buffer.alloc(3 * 512);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
  const w = await f.run(cdb12(0xae, 100, 3), { data });
  t.equal(w.status, GOOD, 'WRITE AND VERIFY(12)');
  t.equal(w.dataOutLength, 3 * 512);
  t.same(dataIn(await f.run(cdb10(0x28, 100, 3))), data);
  t.equal((await f.run(cdb12(0xaf, 100, 3))).status, GOOD, 'VERIFY(12) BYTCHK 0: the medium reads');
  t.equal((await f.run(cdb12(0xaf, 100, 3, 0x02), { data })).status, GOOD, 'BYTCHK 1: equal');
  const other = Buffer.from(data);
  other[700]! ^= 0xff;
  const mis = await f.run(cdb12(0xaf, 100, 3, 0x02), { data: other });
  t.same(senseOf(mis), [0xe, 0x1d, 0], 'MISCOMPARE');
  t.equal(mis.sense!.readUInt32BE(3), 700, 'INFORMATION: offset of the first difference');
  t.same(senseOf(await f.run(cdb12(0xaf, BLOCKS - 1, 2))), [5, 0x21, 0], 'VERIFY(12) past the end');
  t.same(senseOf(await f.run(cdb12(0xae, BLOCKS, 1), { data: Buffer.alloc(512) })), [5, 0x21, 0], 'WRITE AND VERIFY(12) past the end');
  t.same(senseOf(await f.run(cdb12(0xaf, 0, 1, 0x20))), [5, 0x24, 0], 'VRPROTECT');
  t.same(senseOf(await f.run(cdb12(0xae, 0, 1, 0x20), { data: Buffer.alloc(512) })), [5, 0x24, 0], 'WRPROTECT');
  t.equal((await f.run(cdb12(0xaf, 0, 0))).status, GOOD, 'zero blocks');
});

t.test('REPORT SUPPORTED OPERATION CODES lists the new commands', async (t) => {
  const f = makeTarget();
  const one = async (opcode: number) => dataIn(await f.run([0xa3, 0x0c, 0x01, opcode, 0, 0, 0, 0, 1, 0, 0, 0]));
  const expected: Array<[number, number[]]> = [
    [0x34, [0x34, 0x02, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x04]],
    [0x90, [0x90, 0x02, ...Array(12).fill(0xff), 0x00, 0x04]],
    [0x8b, [0x8b, 0xf8, ...Array(12).fill(0xff), 0x00, 0x04]],
    [0xaf, [0xaf, 0xf6, ...Array(8).fill(0xff), 0x00, 0x04]],
    [0xae, [0xae, 0xf2, ...Array(8).fill(0xff), 0x00, 0x04]],
    [0x2f, [0x2f, 0xf6, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x04]],
    [0x8e, [0x8e, 0xf2, ...Array(12).fill(0xff), 0x00, 0x04]],
  ];
  for (const [opcode, usage] of expected) {
    const d = await one(opcode);
    t.equal(d[1]! & 0x07, 3, `0x${opcode.toString(16)} supported`);
    t.equal(d.readUInt16BE(2), usage.length, 'CDB SIZE');
    t.same([...d.subarray(4)], usage, 'CDB USAGE DATA');
  }
});

t.test('WRITE SAME of zero blocks writes up to the last LBA, within MAXIMUM WRITE SAME LENGTH', async (t) => {
  const f = makeTarget({ size: 64 * 1024 * 1024 });
  const blocks = 131072;
  const b0 = dataIn(await f.run([0x12, 1, 0xb0, 0, 255, 0]));
  t.equal(b0[4]! & 1, 0, 'WSNZ clear');
  const max = Number(b0.readBigUInt64BE(36));
  t.equal(max, 0xffff, 'MAXIMUM WRITE SAME LENGTH');

  const pattern = Buffer.alloc(512, 0x5c);
  t.same(senseOf(await f.run(cdb16(0x93, 0, 0), { data: pattern })), [5, 0x24, 0], 'to the end from LBA 0 exceeds the maximum');
  t.same(senseOf(await f.run(cdb16(0x93, blocks - max - 1, 0), { data: pattern })), [5, 0x24, 0], 'maximum + 1 blocks to the end');
  t.equal(f.fault.ops.write + f.fault.ops.writeZeroes, 0, 'nothing written');
  const r = await f.run(cdb16(0x93, blocks - max, 0), { data: pattern });
  t.equal(r.status, GOOD, 'exactly the maximum to the end');
  t.same(dataIn(await f.run(cdb16(0x88, blocks - max - 1, 2))), Buffer.concat([Buffer.alloc(512), pattern]), 'starts at the LBA');
  t.same(dataIn(await f.run(cdb16(0x88, blocks - 1, 1))), pattern, 'reaches the last LBA');

  t.equal((await f.run(cdb10(0x41, blocks - 3, 0), { data: Buffer.alloc(512) })).status, GOOD, 'WRITE SAME(10) of zero blocks');
  t.same(dataIn(await f.run(cdb16(0x88, blocks - 4, 4))), Buffer.concat([pattern, Buffer.alloc(1536)]));
  t.same(senseOf(await f.run(cdb10(0x41, blocks + 1, 0), { data: pattern })), [5, 0x21, 0], 'zero blocks past the end');
  t.same(senseOf(await f.run(cdb16(0x93, 2 ** 63, 0), { data: pattern })), [5, 0x21, 0], 'zero blocks at LBA 2^63');
  t.same(senseOf(await f.run(cdb16(0x93, 0, max + 1), { data: pattern })), [5, 0x24, 0], 'more than MAXIMUM WRITE SAME LENGTH');
});

t.test('WRITE SAME with UNMAP deallocates whatever the data-out holds', async (t) => {
  const f = makeTarget();
  await f.run(cdb10(0x2a, BLOCKS - 4, 4), { data: Buffer.alloc(2048, 0xff) });
  const before = f.memory.allocatedBytes;
  t.equal((await f.run(cdb10(0x41, BLOCKS - 4, 0, 0x08), { data: Buffer.alloc(512, 0xff) })).status, GOOD);
  t.same(dataIn(await f.run(cdb10(0x28, BLOCKS - 4, 4))), Buffer.alloc(2048), 'reads back zero (LBPRZ)');
  t.ok(f.memory.allocatedBytes < before, 'deallocated');
});
