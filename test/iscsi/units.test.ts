/** The transport's pieces on their own: CRC32C, text codec, PDU framing, config parsing. */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { crc32c, crc32cImplementation, crc32cJs } from '../../gateway/iscsi/digest.js';
import { crc32c as bitwiseCrc32c } from '../helpers/crc32c.js';
import { decodeBinary, decodeText, encodeText, TextFormatError } from '../../gateway/iscsi/text.js';
import { ByteQueue } from '../../fabric/byte-queue.js';
import { frame, FramingError, newBhs, PduReader } from '../../gateway/iscsi/pdu.js';
import { demoConfig } from '../../failover/config/demo.js';
import { validateMemberConfig } from '../../failover/config/validate.js';
import { ConfigError } from '../../failover/config/errors.js';
import { seqInWindow, seqLt } from '../../gateway/iscsi/sequence.js';

for (const [name, impl] of [
  ['native', crc32c],
  ['JavaScript', crc32cJs],
] as const) {
  t.test(`CRC32C (${name}) matches RFC 3720 appendix B.4 and the check value`, async (t) => {
    t.equal(impl(Buffer.alloc(32)), 0x8a9136aa, '32 bytes of zeroes');
    t.equal(impl(Buffer.alloc(32, 0xff)), 0x62a8ab43, '32 bytes of ones');
    t.equal(impl(Buffer.from(Array.from({ length: 32 }, (_, i) => i))), 0x46dd794e, 'incrementing');
    t.equal(impl(Buffer.from('123456789')), 0xe3069283, 'check value');
    t.equal(impl([Buffer.from('abc')], 1), impl(Buffer.from('abc\0')), 'padding counts as zero bytes');
  });
}

t.test('the hardware CRC32C is the one in use, and agrees with the JavaScript oracle', async (t) => {
  t.equal(crc32cImplementation, 'native', '@node-rs/crc32 loaded (a broken install must not fall back silently)');
  for (let i = 0; i < 300; i++) {
    const n = i < 100 ? i : Math.floor(Math.random() * 70000);
    const data = randomBytes(n);
    const cut1 = Math.floor(Math.random() * (n + 1));
    const cut2 = cut1 + Math.floor(Math.random() * (n - cut1 + 1));
    const slices = [data.subarray(0, cut1), data.subarray(cut1, cut2), data.subarray(cut2)];
    const pad = (4 - (n & 3)) & 3;
    const want = crc32cJs(slices, pad);
    if (crc32c(slices, pad) !== want || (n < 4096 && bitwiseCrc32c(Buffer.concat([data, Buffer.alloc(pad)])) !== want)) {
      t.fail(`disagree on ${n} bytes cut at ${cut1}/${cut2}, padding ${pad}`);
      return;
    }
  }
  t.pass('300 random lengths, slicings and paddings agree (and with the bitwise definition)');
});

t.test('CRC32C matches RFC 3720 appendix B.4 and the check value', async (t) => {
  t.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa, '32 bytes of zeroes');
  t.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43, '32 bytes of ones');
  t.equal(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i))), 0x46dd794e, 'incrementing');
  t.equal(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i))), 0x113fdb5c, 'decrementing');
  t.equal(crc32c(Buffer.from('123456789')), 0xe3069283, 'check value');
  const data = Buffer.from('the quick brown fox jumps over the lazy dog!!');
  t.equal(crc32c([data.subarray(0, 7), data.subarray(7, 30), data.subarray(30)]), crc32c(data), 'incremental over slices');
  t.equal(crc32c([Buffer.from('abc')], 1), crc32c(Buffer.from('abc\0')), 'padding counts as zero bytes');
});

t.test('text key=value codec', async (t) => {
  const pairs: [string, string][] = [['InitiatorName', 'iqn.x:y'], ['MaxBurstLength', '262144']];
  t.same(decodeText(encodeText(pairs)), pairs);
  t.same(decodeText(Buffer.from('A=1\0\0B=\0')), [['A', '1'], ['B', '']], 'empty pairs skipped, empty values kept');
  t.throws(() => decodeText(Buffer.from('novalue\0')), TextFormatError);
  t.same(decodeBinary('0x0a0b'), Buffer.from([10, 11]));
  t.same(decodeBinary('0bAAEC'), Buffer.from([0, 1, 2]), 'base64 values');
  t.equal(decodeBinary('12'), undefined, 'decimal is not a binary value');
});

t.test('PduReader cuts PDUs across chunks and keeps data as slices', async (t) => {
  const limits = { headerDigest: true, dataDigest: true, maxDataSegment: 8192 };
  const payload = Buffer.from('0123456789abcdefXYZ'); // 19 bytes: 1 byte of padding
  const bhs = newBhs(0x05, 0x80);
  const wire = Buffer.concat(frame(bhs, [payload], payload.length, true, true));
  t.equal(wire.length, 48 + 4 + 20 + 4);
  const queue = new ByteQueue();
  const reader = new PduReader(queue, limits);
  const twice = Buffer.concat([wire, wire]);
  for (let i = 0; i < twice.length; i += 7) queue.push(twice.subarray(i, i + 7));
  const a = reader.next()!;
  const b = reader.next()!;
  t.equal(reader.next(), undefined);
  t.ok(Buffer.concat(a.data as Buffer[]).equals(payload));
  t.ok(a.data.length > 1, 'data arrives as several slices, not concatenated');
  t.equal(b.dataLength, 19);

  const bad = Buffer.from(wire);
  bad[48 + 4 + 3]! ^= 0xff;
  const q2 = new ByteQueue();
  const r2 = new PduReader(q2, limits);
  q2.push(bad);
  t.throws(() => r2.next(), FramingError, 'data digest mismatch');
  const badHeader = Buffer.from(wire);
  badHeader[48 + 1]! ^= 0x01; // the header digest, cut across chunks below
  const q4 = new ByteQueue();
  const r4 = new PduReader(q4, limits);
  for (let i = 0; i < badHeader.length; i += 7) q4.push(badHeader.subarray(i, i + 7));
  t.throws(() => r4.next(), { name: 'FramingError', message: /header digest mismatch/ }, 'header digest mismatch');
  const le = Buffer.from([0xaa, 0x98, 0xba, 0xdc, 0xfe]);
  const q5 = new ByteQueue();
  for (let i = 0; i < le.length; i += 2) q5.push(le.subarray(i, i + 2));
  t.equal(q5.readUInt32LE(1), 0xfedcba98, 'a little-endian u32 across chunks, above 2^31');
  const q3 = new ByteQueue();
  const r3 = new PduReader(q3, { ...limits, maxDataSegment: 8 });
  q3.push(wire);
  t.throws(() => r3.next(), { kind: 'too-long', message: /exceeds MaxRecvDataSegmentLength 8/ });
});

t.test('serial number arithmetic wraps', async (t) => {
  t.ok(seqLt(0xfffffff0, 5));
  t.notOk(seqLt(5, 0xfffffff0));
  t.ok(seqInWindow(2, 0xfffffffe, 10));
  t.notOk(seqInWindow(11, 0xfffffffe, 10));
});

t.test('config: iSCSI section defaults and named errors', async (t) => {
  const withIscsi = (iscsi: unknown) =>
    validateMemberConfig({
      backends: [{ name: 'd', type: 'memory', size: '1M' }],
      exports: [{ name: 'a', device: 'd' }, { name: 'b', device: 'd', readOnly: true }],
      nbd: { listen: [] },
      iscsi,
    }).config.iscsi!;
  const demo = demoConfig().iscsi!;
  t.equal(demo.targets[0]!.name, 'iqn.2026-11.dev.blockgate:demo');
  t.same(demo.targets[0]!.luns, [{ lun: 0, export: 'demo' }]);
  t.same(demo.targets[0]!.portalGroups, [{ id: 1, portals: [{ host: '127.0.0.1', port: 3260 }] }]);

  const parsed = withIscsi({
    targets: [
      {
        name: 'iqn.2026-11.com.example:disk1',
        luns: [{ lun: 0, export: 'a' }, { lun: 3, export: 'b' }],
        chap: { user: 'u', secret: 'a-long-secret' },
        portalGroups: [{ id: 1, portals: ['10.0.0.1:3260', '[fd00::1]:3261'] }, { id: 2, portals: [{ host: '10.0.1.1' }] }],
        aluaPolicy: 'active-passive',
      },
    ],
  });
  const tg = parsed.targets[0]!;
  t.same(tg.portalGroups[0]!.portals, [{ host: '10.0.0.1', port: 3260 }, { host: 'fd00::1', port: 3261 }]);
  t.same(tg.portalGroups[1]!.portals, [{ host: '10.0.1.1', port: 3260 }]);
  t.equal(tg.aluaPolicy, 'active-passive');
  t.same(withIscsi({ targets: [{ name: 'iqn.2026-11.x:y', luns: [{ lun: 0, export: 'a' }] }] }).targets[0]!.portalGroups, [
    { id: 1, portals: [{ host: '127.0.0.1', port: 3260 }] },
  ]);

  const bad = (raw: unknown, field: string) => {
    try {
      withIscsi(raw);
      t.fail(`${field}: accepted`);
    } catch (err) {
      t.ok(err instanceof ConfigError && err.problems.some((p) => p.field === field), `${field}: ${(err as Error).message}`);
    }
  };
  bad({ targets: [{ name: 'disk1', luns: [{ lun: 0, export: 'a' }] }] }, 'iscsi.targets[0].name');
  bad({ targets: [{ name: 'iqn.2026-11.x:y', luns: [] }] }, 'iscsi.targets[0].luns');
  bad({ targets: [{ name: 'iqn.2026-11.x:y', luns: [{ lun: 0, export: 'a' }, { lun: 0, export: 'b' }] }] }, 'iscsi.targets[0].luns[1].lun');
  bad({ targets: [{ name: 'iqn.2026-11.x:y', luns: [{ lun: 0, export: 'zz' }] }] }, 'iscsi.targets[0].luns[0].export');
  bad({ targets: [{ name: 'iqn.2026-11.x:y', luns: [{ lun: 0, export: 'a' }], chap: { user: 'u', secret: 'short' } }] }, 'iscsi.targets[0].chap.secret');
  bad({ targets: [{ name: 'iqn.2026-11.x:y', luns: [{ lun: 0, export: 'a' }], chap: { user: 'u', secret: 'a-long-secret', mutualUser: 'm' } }] }, 'iscsi.targets[0].chap.mutualSecret');
  bad(
    { targets: [{ name: 'iqn.2026-11.x:y', luns: [{ lun: 0, export: 'a' }], chap: { user: 'u', secret: 'a-long-secret', mutualUser: 'm', mutualSecret: 'a-long-secret' } }] },
    'iscsi.targets[0].chap.mutualSecret',
  );
  bad({ targets: [{ name: 'iqn.2026-11.x:y', luns: [{ lun: 0, export: 'a' }], allowNoAuth: false }] }, 'iscsi.targets[0].allowNoAuth');
  bad({ targets: [{ name: 'iqn.2026-11.x:y', luns: [{ lun: 0, export: 'a' }], aluaPolicy: 'both' }] }, 'iscsi.targets[0].aluaPolicy');
  bad({ targets: [{ name: 'iqn.2026-11.x:y', luns: [{ lun: 0, export: 'a' }], portalGroups: [{ id: 1, portals: ['h:99999'] }] }] }, 'iscsi.targets[0].portalGroups[0].portals[0]');
  bad({ targets: [{ name: 'iqn.2026-11.x:y', luns: [{ lun: 0, export: 'a' }], portalGroups: [{ id: 1, portals: ['a'] }, { id: 1, portals: ['b'] }] }] }, 'iscsi.targets[0].portalGroups[1].id');
  bad({ targets: [{ name: 'iqn.2026-11.x:y', luns: [{ lun: 0, export: 'a' }] }, { name: 'iqn.2026-11.x:y', luns: [{ lun: 0, export: 'a' }] }] }, 'iscsi.targets[1].name');
  bad({ targets: [], extra: 1 }, 'iscsi.extra');
  bad({ targets: [{ name: 'iqn.2026-11.x:y', luns: [{ lun: 0, export: 'a' }], lunz: [] }] }, 'iscsi.targets[0].lunz');
});

t.test('64- and 56-bit CDB fields: exact below 2^53, saturated above (no BigInt on the way)', async (t) => {
  const { uint } = await import('../../gateway/scsi/cdb.js');
  const b = Buffer.alloc(8);
  for (const v of [0n, 1n, 0xffffffffn, 0x100000000n, 0x12345678_9abcdef0n >> 12n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 64n - 1n]) {
    b.writeBigUInt64BE(v);
    const want = v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
    t.equal(uint(b, 0, 8), want, `8 bytes 0x${v.toString(16)}`);
    const v7 = v >> 8n;
    t.equal(uint(b, 0, 7), v7 > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v7), `7 bytes 0x${v7.toString(16)}`);
  }
});
