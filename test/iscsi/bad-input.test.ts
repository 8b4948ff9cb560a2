/**
 * Misbehaving initiators: malformed, truncated and oversized PDUs, bad digests, wrong
 * sequence numbers, commands before login. Each is dropped or answered with the right
 * Reject, and the server keeps serving a well-behaved session throughout.
 */
import t from 'tap';
import { crc32c } from '../helpers/crc32c.js';
import { read10, startBlockgate, TestInitiator, write10, type Blockgate } from '../helpers/iscsi.js';

const REJECT = 0x3f;

async function loggedIn(bg: Blockgate, o: Parameters<TestInitiator['login']>[0] = {}): Promise<TestInitiator> {
  const ini = await TestInitiator.connect(bg.port);
  await ini.login(o);
  return ini;
}

t.test('bad input never takes the server down', async (t) => {
  const bg = await startBlockgate();
  t.teardown(() => bg.stop());
  const witness = await loggedIn(bg);
  t.teardown(() => witness.close());
  const stillServing = async (what: string) => {
    const r = await witness.scsi(read10(0, 1), { read: 512 });
    t.equal(r.status, 0, `another session still works after ${what}`);
  };

  await t.test('a SCSI command before login: dropped', async (t) => {
    const ini = await TestInitiator.connect(bg.port);
    const b = ini.bhs(0x01, 0x80);
    b[32] = 0x00;
    ini.send(b);
    t.equal(await ini.waitClosed(), true);
  });
  await stillServing('a command before login');

  await t.test('garbage login: initiator error, then closed', async (t) => {
    const ini = await TestInitiator.connect(bg.port);
    const b = ini.bhs(0x43, 0x80 | (3 << 2) | 3); // CSG=3 is not a stage one can log in from
    ini.send(b, Buffer.from('InitiatorName=iqn.x:y\0'));
    const r = await ini.next();
    t.equal(r.bhs[36], 0x02, 'status class: initiator error');
    t.equal(await ini.waitClosed(), true);
  });

  await t.test('malformed login text: initiator error', async (t) => {
    const ini = await TestInitiator.connect(bg.port);
    const b = ini.bhs(0x43, 0x80 | (1 << 2) | 3);
    ini.send(b, Buffer.from('no-equals-sign\0'));
    const r = await ini.next();
    t.equal(r.bhs.readUInt16BE(36), 0x0200);
    t.equal(await ini.waitClosed(), true);
  });

  await t.test('truncated PDU then hang-up', async (t) => {
    const ini = await TestInitiator.connect(bg.port);
    ini.raw(Buffer.alloc(20, 0x43));
    ini.close();
    t.pass('sent half a header and left');
  });
  await stillServing('a truncated PDU');

  await t.test('oversized data segment: reject and drop', async (t) => {
    const ini = await loggedIn(bg);
    const b = ini.bhs(0x00 | 0x40, 0x80);
    b.writeUInt32BE(ini.itt++, 16);
    b.writeUIntBE(0xfffff0, 5, 3); // claims ~16 MiB: more than our MaxRecvDataSegmentLength
    ini.raw(b);
    const r = await ini.next();
    t.equal(r.bhs[0]! & 0x3f, REJECT);
    t.equal(r.bhs[2], 0x04, 'protocol error');
    t.equal(await ini.waitClosed(), true, 'connection dropped');
  });
  await stillServing('an oversized PDU');

  await t.test('bad header digest: dropped (ERL 0)', async (t) => {
    const ini = await loggedIn(bg, { headerDigest: true });
    const b = ini.bhs(0x00 | 0x40, 0x80);
    b.writeUInt32BE(ini.itt++, 16);
    const digest = Buffer.alloc(4);
    digest.writeUInt32LE((crc32c(b) ^ 1) >>> 0);
    ini.raw(Buffer.concat([b, digest]));
    t.equal(await ini.waitClosed(), true);
  });

  await t.test('bad data digest: Reject (data digest error) and dropped', async (t) => {
    const ini = await loggedIn(bg, { dataDigest: true });
    const b = ini.bhs(0x00 | 0x40, 0x80);
    b.writeUInt32BE(ini.itt++, 16);
    b.writeUInt32BE(0xffffffff, 20);
    b.writeUIntBE(4, 5, 3);
    const digest = Buffer.alloc(4);
    digest.writeUInt32LE(0xdeadbeef);
    ini.raw(Buffer.concat([b, Buffer.from('ping'), digest]));
    const r = await ini.next();
    t.equal(r.bhs[0]! & 0x3f, REJECT);
    t.equal(r.bhs[2], 0x02, 'reason: data digest error');
    t.equal(await ini.waitClosed(), true);
  });
  await stillServing('digest errors');

  await t.test('CmdSN outside the window: ignored, the session goes on', async (t) => {
    const ini = await loggedIn(bg);
    t.teardown(() => ini.close());
    const tooHigh = ini.scsi(read10(0, 1), { read: 512, cmdSN: (ini.cmdSN + 100_000) >>> 0 });
    const tooLow = ini.scsi(read10(0, 1), { read: 512, cmdSN: (ini.cmdSN - 5) >>> 0 });
    const ok = await ini.scsi(read10(0, 1), { read: 512 });
    t.equal(ok.status, 0, 'the in-window command is answered');
    const outcomes = await Promise.allSettled([tooHigh, tooLow]);
    t.same(outcomes.map((o) => o.status), ['rejected', 'rejected'], 'out-of-window commands got no answer');
  });

  await t.test('unknown opcode: Reject (command not supported), session continues', async (t) => {
    const ini = await loggedIn(bg);
    t.teardown(() => ini.close());
    const b = ini.bhs(0x1c, 0x80);
    b.writeUInt32BE(ini.itt++, 16);
    ini.send(b);
    const r = await ini.next();
    t.equal(r.bhs[0]! & 0x3f, REJECT);
    t.equal(r.bhs[2], 0x05);
    t.equal((await ini.scsi(read10(0, 1), { read: 512 })).status, 0, 'still usable');
  });

  await t.test('Data-Out with a wrong DataSN: Reject and drop', async (t) => {
    const ini = await loggedIn(bg);
    const tag = ini.itt++;
    const cmd = ini.bhs(0x01, 0x80 | 0x20);
    cmd.writeUInt32BE(tag, 16);
    cmd.writeUInt32BE(2048, 20);
    cmd.writeUInt32BE(ini.cmdSN++, 24);
    write10(0, 4).copy(cmd, 32);
    ini.send(cmd);
    const r2t = await ini.next((p) => (p.bhs[0]! & 0x3f) === 0x31);
    const d = ini.bhs(0x05, 0x80);
    d.writeUInt32BE(tag, 16);
    d.writeUInt32BE(r2t.bhs.readUInt32BE(20), 20);
    d.writeUInt32BE(5, 36); // DataSN should be 0
    ini.send(d, Buffer.alloc(2048));
    const r = await ini.next((p) => (p.bhs[0]! & 0x3f) === REJECT);
    t.equal(r.bhs[2], 0x04);
    t.equal(await ini.waitClosed(), true);
  });

  await t.test('Data-Out for a task that does not exist: Reject', async (t) => {
    const ini = await loggedIn(bg);
    t.teardown(() => ini.close());
    const d = ini.bhs(0x05, 0x80);
    d.writeUInt32BE(0x1234, 16);
    d.writeUInt32BE(0xffffffff, 20);
    ini.send(d, Buffer.alloc(512));
    const r = await ini.next();
    t.equal(r.bhs[0]! & 0x3f, REJECT);
    t.equal(r.bhs[2], 0x09, 'invalid PDU field');
  });

  await t.test('immediate data larger than the command expects: Reject', async (t) => {
    const ini = await loggedIn(bg);
    t.teardown(() => ini.close());
    const cmd = ini.bhs(0x01, 0x80 | 0x20);
    cmd.writeUInt32BE(ini.itt++, 16);
    cmd.writeUInt32BE(512, 20);
    cmd.writeUInt32BE(ini.cmdSN++, 24);
    write10(0, 1).copy(cmd, 32);
    ini.send(cmd, Buffer.alloc(1024));
    const r = await ini.next();
    t.equal(r.bhs[0]! & 0x3f, REJECT);
    t.equal(r.bhs[2], 0x04);
  });

  await t.test('a write asking us to buffer 1 GiB: refused with CHECK CONDITION, no R2T', async (t) => {
    const ini = await loggedIn(bg);
    t.teardown(() => ini.close());
    const tag = ini.itt++;
    const cmd = ini.bhs(0x01, 0x80 | 0x20);
    cmd.writeUInt32BE(tag, 16);
    cmd.writeUInt32BE(1 << 30, 20);
    cmd.writeUInt32BE(ini.cmdSN++, 24);
    write10(0, 0xffff).copy(cmd, 32);
    ini.send(cmd);
    const r = await ini.next((p) => p.bhs.readUInt32BE(16) === tag);
    t.equal(r.bhs[0]! & 0x3f, 0x21, 'SCSI Response, not an R2T');
    t.equal(r.bhs[3], 2, 'CHECK CONDITION');
    t.equal(r.data[2 + 2]! & 0x0f, 5, 'ILLEGAL REQUEST');
    t.equal((await ini.scsi(read10(0, 1), { read: 512 })).status, 0, 'session goes on');
  });

  await t.test('a storm of random bytes', async (t) => {
    for (let i = 0; i < 20; i++) {
      const ini = await TestInitiator.connect(bg.port);
      const junk = Buffer.alloc(48 + (i * 97) % 400);
      for (let j = 0; j < junk.length; j++) junk[j] = (j * 31 + i * 17) & 0xff;
      ini.raw(junk);
      ini.close();
    }
    t.pass('sent');
  });
  await stillServing('random bytes');
});
