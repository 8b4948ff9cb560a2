/**
 * iSCSI access lists (as LIO's node ACLs): only listed initiators log in (others get login
 * status 0x0202, logged and counted) or even see the target in discovery; each may have
 * its own CHAP secret, sees only its LUNs (REPORT LUNS, commands, task management), and
 * may reset the target only if allowed.
 */
import t, { type Test } from 'tap';
import { runTool } from '../helpers/clients.js';
import { LoginError, read10, senseOf, startBlockgate, TestInitiator, TARGET_IQN, type Blockgate } from '../helpers/iscsi.js';
import { MemoryBackend } from '../../fabric/backends/memory.js';

const HOST_A = 'iqn.2026-11.dev.blockgate:host-a';
const HOST_B = 'iqn.2026-11.dev.blockgate:host-b';
const HOST_C = 'iqn.2026-11.dev.blockgate:host-c';
const B_CHAP = { user: 'host-b', secret: 'b-secret-0123456789' };
const REPORT_LUNS = Buffer.from([0xa0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0]);

async function target(t: Test): Promise<Blockgate> {
  const bg = await startBlockgate({
    target: {
      luns: [
        { lun: 0, export: 'disk' },
        { lun: 1, export: 'second' },
      ],
      acls: [
        { initiator: HOST_A, luns: [0], allowTargetReset: true },
        { initiator: HOST_B, chap: B_CHAP },
      ],
    },
    extraExports: [{ name: 'second', device: new MemoryBackend({ name: 'second', size: 4 * 1024 * 1024 }) }],
  });
  t.teardown(() => bg.stop());
  return bg;
}

async function login(t: Test, bg: Blockgate, o: Parameters<TestInitiator['login']>[0]): Promise<TestInitiator> {
  const ini = await TestInitiator.connect(bg.port);
  t.teardown(() => ini.close());
  await ini.login(o);
  return ini;
}

const lunsOf = (data: Buffer) => Array.from({ length: data.readUInt32BE(0) / 8 }, (_, i) => data.readUInt16BE(8 + 8 * i) & 0x3fff);

t.test('an initiator not in the list: login status 0x0202, logged and counted', async (t) => {
  const bg = await target(t);
  const ini = await TestInitiator.connect(bg.port);
  t.teardown(() => ini.close());
  const err = await ini.login({ initiatorName: HOST_C }).catch((e: unknown) => e);
  t.ok(err instanceof LoginError);
  t.equal((err as LoginError).statusClass, 0x02);
  t.equal((err as LoginError).statusDetail, 0x02, 'initiator error: authorization failure');
  t.equal(bg.server.refusals.count('iscsi', 'not-allowed'), 1);
  const ls = await runTool('iscsi-ls', ['-i', HOST_C, '-s', `iscsi://127.0.0.1:${bg.port}`], { allowFailure: true });
  t.notMatch(ls.stdout, TARGET_IQN, 'iscsi-ls as host-c: the target is not even discovered');
});

t.test('LUN masking: an initiator sees and reaches only its LUNs', async (t) => {
  const bg = await target(t);
  const a = await login(t, bg, { initiatorName: HOST_A });
  t.same(lunsOf((await a.scsi(REPORT_LUNS, { read: 4096 })).data), [0], 'REPORT LUNS for host-a: LUN 0 only');
  const masked = await a.scsi(read10(0, 1), { lun: 1, read: 512 });
  t.equal(masked.status, 0x02);
  t.match(senseOf(masked.sense), { key: 0x05, asc: 0x25, ascq: 0 }, 'LUN 1: LOGICAL UNIT NOT SUPPORTED');
  const ls = await runTool('iscsi-ls', ['-i', HOST_A, '-s', `iscsi://127.0.0.1:${bg.port}`]);
  t.match(ls.stdout, TARGET_IQN, 'iscsi-ls as host-a discovers the target');
  t.match(ls.stdout, /Lun:0 /);
  t.notMatch(ls.stdout, /Lun:1 /, 'and lists LUN 0 only');

  const b = await login(t, bg, { initiatorName: HOST_B, chap: B_CHAP });
  t.same(lunsOf((await b.scsi(REPORT_LUNS, { read: 4096 })).data), [0, 1], 'host-b sees both');
  const inq = await runTool('iscsi-inq', ['-i', HOST_B, `iscsi://${B_CHAP.user}%${B_CHAP.secret}@127.0.0.1:${bg.port}/${TARGET_IQN}/1`]);
  t.match(inq.stdout, /BLOCKGAT/, 'iscsi-inq as host-b with its CHAP secret reaches LUN 1');

  // Task management on a masked LUN: as if it did not exist.
  const tmf = a.bhs(0x02 | 0x40, 0x80 | 5);
  const tag = a.itt++;
  tmf[9] = 1;
  tmf.writeUInt32BE(tag, 16);
  tmf.writeUInt32BE(0xffffffff, 20);
  tmf.writeUInt32BE(a.cmdSN, 24);
  tmf.writeUInt32BE(a.expStatSN, 28);
  a.send(tmf);
  t.equal((await a.next((p) => p.bhs.readUInt32BE(16) === tag)).bhs[2], 2, 'LUN RESET of LUN 1 from host-a: LUN does not exist');
});

t.test("per-initiator CHAP: host-b must use its own secret", async (t) => {
  const bg = await target(t);
  const none = await TestInitiator.connect(bg.port);
  t.teardown(() => none.close());
  const err = await none.login({ initiatorName: HOST_B }).catch((e: unknown) => e);
  t.equal((err as LoginError).statusDetail, 0x01, 'without CHAP: authentication failure');
  const wrong = await TestInitiator.connect(bg.port);
  t.teardown(() => wrong.close());
  const err2 = await wrong.login({ initiatorName: HOST_B, chap: { user: B_CHAP.user, secret: 'not-the-secret-123' } }).catch((e: unknown) => e);
  t.equal((err2 as LoginError).statusDetail, 0x01, 'with the wrong secret: authentication failure');
  t.equal(bg.server.refusals.count('iscsi', 'authentication'), 2, 'both counted');
  await login(t, bg, { initiatorName: HOST_B, chap: B_CHAP });
  t.pass('with its secret: logged in');
});

t.test('target reset per initiator', async (t) => {
  const bg = await target(t);
  const reset = async (ini: TestInitiator) => {
    const tmf = ini.bhs(0x02 | 0x40, 0x80 | 6);
    const tag = ini.itt++;
    tmf.writeUInt32BE(tag, 16);
    tmf.writeUInt32BE(0xffffffff, 20);
    tmf.writeUInt32BE(ini.cmdSN, 24);
    tmf.writeUInt32BE(ini.expStatSN, 28);
    ini.send(tmf);
    return (await ini.next((p) => p.bhs.readUInt32BE(16) === tag)).bhs[2];
  };
  t.equal(await reset(await login(t, bg, { initiatorName: HOST_B, chap: B_CHAP })), 6, 'host-b: function authorization failed');
  t.equal(await reset(await login(t, bg, { initiatorName: HOST_A })), 0, 'host-a, allowed by its ACL: function complete');
});
