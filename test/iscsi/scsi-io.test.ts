import t from 'tap';
import type { WriteOptions } from '../../fabric/device.js';
import { A, cdb10, cdb16, dataIn, makeTarget, senseOf } from '../helpers/scsi-fixtures.js';

const GOOD = 0;
const pattern = (blocks: number, seed: number, size = 512) => {
  const b = Buffer.alloc(blocks * size);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
};

t.test('READ and WRITE 6/10/12/16 round trip', async (t) => {
  const f = makeTarget();
  const w6 = pattern(2, 1);
  t.equal((await f.run([0x0a, 0, 0, 10, 2, 0], { data: w6 })).status, GOOD);
  t.same(dataIn(await f.run([0x08, 0, 0, 10, 2, 0])), w6, '6-byte CDBs');
  const w10 = pattern(3, 2);
  t.equal((await f.run(cdb10(0x2a, 100, 3), { data: [w10.subarray(0, 700), w10.subarray(700)] })).status, GOOD, 'data-out in slices');
  t.same(dataIn(await f.run(cdb10(0x28, 100, 3))), w10);
  const c12 = Buffer.alloc(12);
  c12[0] = 0xaa;
  c12.writeUInt32BE(200, 2);
  c12.writeUInt32BE(1, 6);
  const w12 = pattern(1, 3);
  t.equal((await f.run(c12, { data: w12 })).status, GOOD);
  c12[0] = 0xa8;
  t.same(dataIn(await f.run(c12)), w12, '12-byte CDBs');
  const w16 = pattern(4, 4);
  t.equal((await f.run(cdb16(0x8a, 16380, 4, 0x08), { data: w16 })).status, GOOD, 'FUA write up to the last block');
  t.same(dataIn(await f.run(cdb16(0x88, 16380, 4))), w16);
  const padded = Buffer.alloc(16);
  Buffer.from(cdb10(0x28, 100, 3)).copy(padded);
  t.same(dataIn(await f.run(padded)), w10, 'a CDB padded to 16 bytes is cut to its length');
  t.same(await f.memory.read(100 * 512, Buffer.alloc(3 * 512)).then(() => 'ok'), 'ok');
  const direct = Buffer.alloc(3 * 512);
  await f.device.read(100 * 512, direct);
  t.same(direct, w10, 'the bytes reached the device');
  t.equal((await f.run(cdb10(0x28, 0, 0))).status, GOOD, 'zero blocks');
  const w6zero = await f.run([0x08, 0, 0, 0, 0, 0]);
  t.equal(dataIn(w6zero).length, 256 * 512, 'READ(6) length 0 means 256 blocks');
});

t.test('range, protection and size errors', async (t) => {
  const f = makeTarget();
  const oob = await f.run(cdb10(0x28, 16384, 1));
  t.same(senseOf(oob), [5, 0x21, 0], 'LBA OUT OF RANGE');
  t.same(senseOf(await f.run(cdb10(0x28, 16383, 2))), [5, 0x21, 0], 'crosses the end');
  t.same(senseOf(await f.run(cdb16(0x88, 2 ** 40, 1))), [5, 0x21, 0], 'huge LBA');
  t.same(senseOf(await f.run(cdb16(0x88, 0xffffffffffff, 1))), [5, 0x21, 0]);
  t.same(senseOf(await f.run(cdb10(0x2a, 16384, 0))), [5, 0x21, 0], 'zero-length write beyond the end');
  t.same(senseOf(await f.run(cdb10(0x28, 0, 1, 0x20))), [5, 0x24, 0], 'RDPROTECT');
  const big = makeTarget({ size: 64 * 1024 * 1024 });
  const r = await big.run(cdb10(0x28, 0, 20000));
  t.same(senseOf(r), [5, 0x24, 0], 'beyond the maximum transfer length');
  t.equal(r.sense!.readUInt16BE(16), 7, 'points at TRANSFER LENGTH');
  await f.run(cdb10(0x2a, 0, 2), { data: Buffer.alloc(1024, 0x61) });
  const short = await f.run(cdb10(0x2a, 0, 2), { data: Buffer.alloc(512 + 200, 0x62) });
  t.equal(short.status, GOOD, 'data-out shorter than the CDB (EDTL < SPDTL): GOOD');
  t.equal(short.dataOutLength, 1024, 'the transport reports the overflow from the CDB length');
  const check = Buffer.alloc(1024);
  await f.device.read(0, check);
  t.same(check, Buffer.concat([Buffer.alloc(512, 0x62), Buffer.alloc(512, 0x61)]), 'only the whole blocks received were written');
  const long = await f.run(cdb10(0x2a, 0, 1), { data: Buffer.alloc(2048, 9) });
  t.equal(long.status, GOOD, 'more data-out than needed');
  t.equal(long.dataOutLength, 512, 'reports the CDB transfer length for residuals');
  await f.device.read(512, check);
  t.equal(check[0], 0x61, 'only the CDB length was written');
});

t.test('medium errors, not ready and write protect from the fabric', async (t) => {
  const f = makeTarget();
  f.fault.always.set('read', 'EIO');
  const r = await f.run(cdb10(0x28, 77, 1));
  t.same(senseOf(r), [3, 0x11, 0], 'EIO on read: UNRECOVERED READ ERROR');
  t.equal(r.sense![0], 0xf0, 'VALID: INFORMATION holds the LBA');
  t.equal(r.sense!.readUInt32BE(3), 77);
  f.fault.clearFaults();
  f.fault.always.set('write', 'EIO');
  t.same(senseOf(await f.run(cdb10(0x2a, 5, 1), { data: Buffer.alloc(512) })), [3, 0x0c, 0], 'EIO on write: WRITE ERROR');
  f.fault.always.set('write', 'ESHUTDOWN');
  t.same(senseOf(await f.run(cdb10(0x2a, 5, 1), { data: Buffer.alloc(512) })), [2, 0x04, 0], 'ESHUTDOWN: NOT READY');
  f.fault.always.set('write', 'ETIMEDOUT');
  t.same(senseOf(await f.run(cdb10(0x2a, 5, 1), { data: Buffer.alloc(512) })), [0x0b, 0x08, 0x01], 'ETIMEDOUT: retryable');
  f.fault.always.set('write', 'ENOMEM');
  t.equal((await f.run(cdb10(0x2a, 5, 1), { data: Buffer.alloc(512) })).status, 0x08, 'ENOMEM: BUSY');
  f.fault.always.set('write', 'ENOSPC');
  t.same(senseOf(await f.run(cdb10(0x2a, 5, 1), { data: Buffer.alloc(512) })), [7, 0x27, 0x07], 'ENOSPC: space allocation failed');
  f.fault.clearFaults();
  f.fault.always.set('flush', 'EIO');
  t.same(senseOf(await f.run(cdb10(0x35, 0, 0))), [3, 0x0c, 0], 'flush failure');
  f.fault.clearFaults();

  t.equal((await f.run([0, 0, 0, 0, 0, 0])).status, GOOD, 'TEST UNIT READY on a healthy device');
  f.fault.down();
  t.same(senseOf(await f.run([0, 0, 0, 0, 0, 0])), [2, 0x04, 0x03], 'failed device: NOT READY');
  const rs = dataIn(await f.run([0x03, 0, 0, 0, 252, 0]));
  t.same([rs[2]! & 0x0f, rs[12], rs[13]], [2, 0x04, 0x03], 'REQUEST SENSE says why');
  f.fault.up();
  const ok = dataIn(await f.run([0x03, 0, 0, 0, 252, 0]));
  t.same([ok[0], ok[2], ok[12]], [0x70, 0, 0], 'NO SENSE');
  t.same(senseOf(await f.run([0x03, 1, 0, 0, 252, 0])), [5, 0x24, 0], 'descriptor format refused');

  const ro = makeTarget({ readOnly: true });
  for (const cdb of [cdb10(0x2a, 0, 1), cdb16(0x93, 0, 1), cdb10(0x41, 0, 1)]) {
    t.same(senseOf(await ro.run(cdb, { data: Buffer.alloc(512) })), [7, 0x27, 0], `write protected 0x${cdb[0]!.toString(16)}`);
  }
  const unmapList = Buffer.alloc(24);
  unmapList.writeUInt16BE(22, 0);
  unmapList.writeUInt16BE(16, 2);
  unmapList.writeUInt32BE(1, 16);
  t.same(senseOf(await ro.run([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], { data: unmapList })), [7, 0x27, 0], 'UNMAP write protected');
  const ms = dataIn(await ro.run([0x1a, 0, 0x3f, 0, 255, 0]));
  t.equal(ms[2]! & 0x80, 0x80, 'MODE SENSE WP bit');
});

t.test('FUA, write cache off and flush reach the device', async (t) => {
  const f = makeTarget();
  const seen: string[] = [];
  const dev = f.memory;
  const origWrite = dev.write.bind(dev);
  const origFlush = dev.flush.bind(dev);
  dev.write = async (o: number, d: readonly Buffer[], opt?: WriteOptions) => {
    seen.push(`write fua=${opt?.fua ?? false}`);
    return origWrite(o, d);
  };
  dev.flush = async () => {
    seen.push('flush');
    return origFlush();
  };
  await f.run(cdb10(0x2a, 0, 1), { data: Buffer.alloc(512) });
  await f.run(cdb10(0x2a, 0, 1, 0x08), { data: Buffer.alloc(512) });
  await f.run(cdb16(0x91, 0, 0));
  f.target.logicalUnit(0)!.writeCacheEnabled = false;
  await f.run(cdb10(0x2a, 0, 1), { data: Buffer.alloc(512) });
  t.same(seen, ['write fua=false', 'write fua=true', 'flush', 'write fua=true']);
  t.same(senseOf(await f.run(cdb16(0x91, 16384, 1))), [5, 0x21, 0], 'SYNCHRONIZE CACHE range checked');
});

t.test('VERIFY and WRITE AND VERIFY', async (t) => {
  const f = makeTarget();
  const data = pattern(2, 9);
  await f.run(cdb10(0x2a, 40, 2), { data });
  t.equal((await f.run(cdb10(0x2f, 40, 2))).status, GOOD, 'BYTCHK 0: medium readable');
  t.equal((await f.run(cdb10(0x2f, 40, 2, 0x02), { data })).status, GOOD, 'BYTCHK 1: equal');
  const other = Buffer.from(data);
  other[700]! ^= 0xff;
  const mis = await f.run(cdb16(0x8f, 40, 2, 0x02), { data: other });
  t.same(senseOf(mis), [0x0e, 0x1d, 0], 'MISCOMPARE');
  t.equal(mis.sense!.readUInt32BE(3), 700, 'offset of the first difference');
  await f.run(cdb10(0x41, 60, 4), { data: data.subarray(0, 512) });
  t.equal((await f.run(cdb10(0x2f, 60, 4, 0x06), { data: data.subarray(0, 512) })).status, GOOD, 'BYTCHK 3: one block against each');
  t.same(senseOf(await f.run(cdb10(0x2f, 60, 4, 0x04), { data })), [5, 0x24, 0], 'BYTCHK 2 reserved');
  f.fault.always.set('read', 'EIO');
  t.same(senseOf(await f.run(cdb10(0x2f, 40, 2))), [3, 0x11, 0], 'VERIFY finds an unreadable medium');
  f.fault.clearFaults();
  const wv = pattern(3, 11);
  t.equal((await f.run(cdb10(0x2e, 80, 3), { data: wv })).status, GOOD);
  t.same(dataIn(await f.run(cdb10(0x28, 80, 3))), wv, 'WRITE AND VERIFY wrote');
  t.equal((await f.run(cdb16(0x8e, 90, 1), { data: wv.subarray(0, 512) })).status, GOOD);
});

t.test('COMPARE AND WRITE', async (t) => {
  const f = makeTarget();
  const before = pattern(2, 20);
  const after = pattern(2, 21);
  await f.run(cdb10(0x2a, 8, 2), { data: before });
  const cw = (lba: number, blocks: number) => {
    const c = Buffer.alloc(16);
    c[0] = 0x89;
    c.writeBigUInt64BE(BigInt(lba), 2);
    c[13] = blocks;
    return c;
  };
  t.equal((await f.run(cw(8, 2), { data: [before, after] })).status, GOOD);
  t.same(dataIn(await f.run(cdb10(0x28, 8, 2))), after, 'written when equal');
  const stale = Buffer.from(before);
  const r = await f.run(cw(8, 2), { data: [stale, pattern(2, 22)] });
  t.same(senseOf(r), [0x0e, 0x1d, 0], 'MISCOMPARE');
  t.equal(r.sense![0]! & 0x80, 0x80, 'VALID');
  const expectedOffset = [...after].findIndex((b, i) => b !== stale[i]);
  t.equal(r.sense!.readUInt32BE(3), expectedOffset, 'INFORMATION: offset of the first differing byte');
  t.same(dataIn(await f.run(cdb10(0x28, 8, 2))), after, 'nothing written on miscompare');
  t.same(senseOf(await f.run(cw(16384, 1), { data: Buffer.alloc(1024) })), [5, 0x21, 0]);
  t.same(senseOf(await f.run(cw(0, 2), { data: Buffer.alloc(1024) })), [5, 0x24, 0], 'needs exactly 2n blocks of data-out');
  t.same(senseOf(await f.run(cw(0, 1), { data: Buffer.alloc(4096) })), [5, 0x24, 0], 'not more either');

  // Atomicity: many concurrent compare-and-writes incrementing a counter; every success
  // must have seen the previous value, so the count equals the number of successes.
  const block = (n: number) => {
    const b = Buffer.alloc(512);
    b.writeUInt32BE(n, 0);
    return b;
  };
  await f.run(cdb10(0x2a, 100, 1), { data: block(0) });
  let successes = 0;
  const attempt = async () => {
    for (;;) {
      const cur = dataIn(await f.run(cdb10(0x28, 100, 1))).readUInt32BE(0);
      const res = await f.run(cw(100, 1), { data: [block(cur), block(cur + 1)] });
      if (res.status === GOOD) return successes++;
    }
  };
  await Promise.all(Array.from({ length: 20 }, attempt));
  t.equal(dataIn(await f.run(cdb10(0x28, 100, 1))).readUInt32BE(0), successes);
  t.equal(successes, 20);
});

t.test('UNMAP and WRITE SAME change the device allocation', async (t) => {
  const f = makeTarget({ size: 8 * 1024 * 1024 });
  // 64 KiB chunks in the memory backend = 128 blocks.
  await f.run(cdb10(0x2a, 0, 256), { data: pattern(256, 1) });
  t.equal(f.memory.allocatedBytes, 128 * 1024);
  const list = Buffer.alloc(8 + 16);
  list.writeUInt16BE(6 + 16, 0);
  list.writeUInt16BE(16, 2);
  list.writeBigUInt64BE(128n, 8);
  list.writeUInt32BE(128, 16);
  t.equal((await f.run([0x42, 0, 0, 0, 0, 0, 0, 0, list.length, 0], { data: list })).status, GOOD);
  const extents = await f.device.blockStatus(0, 256 * 512);
  t.same(extents.map((e) => [e.length, e.hole]), [[65536, false], [65536, true]], 'the unmapped range is a hole');
  t.same(dataIn(await f.run(cdb10(0x28, 128, 1))), Buffer.alloc(512), 'and reads zero (LBPRZ)');

  const lba = await f.run([0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
  const ls = dataIn(lba);
  t.equal(ls.readBigUInt64BE(8), 0n);
  t.equal(ls.readUInt32BE(16), 128, 'GET LBA STATUS: mapped run');
  t.equal(ls[20], 0);
  t.equal(ls.readBigUInt64BE(24), 128n);
  t.equal(ls[36], 1, 'then deallocated');

  const bad = Buffer.from(list);
  bad.writeBigUInt64BE(16380n, 8);
  t.same(senseOf(await f.run([0x42, 0, 0, 0, 0, 0, 0, 0, bad.length, 0], { data: bad })), [5, 0x21, 0], 'descriptor beyond the end');
  t.same(senseOf(await f.run([0x42, 0, 0, 0, 0, 0, 0, 0, 4, 0], { data: list.subarray(0, 4) })), [5, 0x1a, 0], 'list shorter than its header');
  const lying = Buffer.from(list);
  lying.writeUInt16BE(64, 2);
  t.same(senseOf(await f.run([0x42, 0, 0, 0, 0, 0, 0, 0, lying.length, 0], { data: lying })), [5, 0x26, 0], 'descriptor length beyond the list');
  t.equal((await f.run([0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0])).status, GOOD, 'empty list');
  t.same(senseOf(await f.run([0x42, 1, 0, 0, 0, 0, 0, 0, list.length, 0], { data: list })), [5, 0x24, 0], 'ANCHOR');

  // WRITE SAME with UNMAP and zeroes deallocates; without UNMAP it keeps blocks allocated.
  t.equal((await f.run(cdb16(0x93, 0, 128, 0x08), { data: Buffer.alloc(512) })).status, GOOD);
  t.equal(f.memory.allocatedBytes, 0, 'WRITE SAME UNMAP punched the hole');
  t.equal((await f.run(cdb16(0x93, 0, 128, 0x01))).status, GOOD, 'NDOB without UNMAP');
  t.equal(f.memory.allocatedBytes, 64 * 1024, 'zeroes written, still allocated');
  const same = Buffer.alloc(512, 0xab);
  t.equal((await f.run(cdb10(0x41, 300, 5), { data: same })).status, GOOD);
  t.same(dataIn(await f.run(cdb10(0x28, 300, 5))), Buffer.alloc(5 * 512, 0xab), 'pattern repeated');
  t.equal((await f.run(cdb10(0x41, 16380, 0), { data: same })).status, GOOD, 'zero blocks (WSNZ=0): up to the last LBA');
  t.same(dataIn(await f.run(cdb10(0x28, 16380, 4))), Buffer.alloc(4 * 512, 0xab), 'the last four blocks written');
  t.same(senseOf(await f.run(cdb10(0x41, 16383, 2), { data: same })), [5, 0x21, 0]);
  t.same(senseOf(await f.run(cdb10(0x41, 0, 1, 0x10), { data: same })), [5, 0x24, 0], 'ANCHOR');
});

t.test('4096-byte logical blocks', async (t) => {
  const f = makeTarget({ blockSize: 4096 });
  const data = pattern(2, 5, 4096);
  t.equal((await f.run(cdb10(0x2a, 3, 2), { data })).status, GOOD);
  const direct = Buffer.alloc(8192);
  await f.device.read(3 * 4096, direct);
  t.same(direct, data);
  t.same(senseOf(await f.run(cdb10(0x28, 2048, 1))), [5, 0x21, 0]);
});

t.test('abort stops a command', async (t) => {
  const f = makeTarget();
  const controller = new AbortController();
  controller.abort();
  const r = await f.target.execute({
    nexus: A,
    lun: 0,
    cdb: Buffer.from(cdb10(0x28, 0, 1)),
    direction: 'read',
    expectedDataInLength: 512,
    taskTag: 99,
    signal: controller.signal,
  });
  t.equal(r.status, 0x40, 'TASK ABORTED');
  t.equal(f.target.abortTask(A, 12345), false, 'no such task');
});
