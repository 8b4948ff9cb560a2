/**
 * Login, negotiation, CHAP, discovery, sessions and full-feature housekeeping, driven by our
 * own test initiator so every key and status code is visible.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { LoginError, read10, startBlockgate, TARGET_IQN, TestInitiator, write10 } from '../helpers/iscsi.js';

const statusOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (err instanceof LoginError) return `0x${((err.statusClass << 8) | err.statusDetail).toString(16).padStart(4, '0')}`;
    throw err;
  }
};

t.test('operational negotiation answers per RFC 7143', async (t) => {
  const bg = await startBlockgate();
  t.teardown(() => bg.stop());
  const ini = await TestInitiator.connect(bg.port);
  t.teardown(() => ini.close());
  await ini.login({
    extraKeys: {
      'X-com.example.Vendor': 'x',
      MaxBurstLength: 'lots',
      FirstBurstLength: '4096',
      InitialR2T: 'No',
      ImmediateData: 'Yes',
      MaxOutstandingR2T: '4',
      ErrorRecoveryLevel: '2',
      MaxConnections: '8',
      IFMarker: 'No',
      DefaultTime2Wait: '0',
    },
  });
  const k = ini.loginKeys;
  t.equal(k.get('X-com.example.Vendor'), 'NotUnderstood', 'unknown key: NotUnderstood');
  t.equal(k.get('MaxBurstLength'), 'Reject', 'malformed value: Reject');
  t.equal(k.get('FirstBurstLength'), '4096', 'min function');
  t.equal(k.get('InitialR2T'), 'No', 'OR function with our No');
  t.equal(k.get('ImmediateData'), 'Yes', 'AND function');
  t.equal(k.get('MaxOutstandingR2T'), '4');
  t.equal(k.get('ErrorRecoveryLevel'), '0', 'only ERL 0');
  t.equal(k.get('MaxConnections'), '1', 'one connection per session');
  t.equal(k.get('IFMarker'), 'No', 'markers declined');
  t.equal(k.get('DefaultTime2Wait'), '2', 'max function');
  t.equal(k.get('TargetPortalGroupTag'), '1', 'TPGT in the first response');
  t.ok(Number(k.get('MaxRecvDataSegmentLength')) >= 8192, 'target declares its MaxRecvDataSegmentLength');
  // Immediate data then unsolicited bursts bounded by FirstBurstLength: a 64 KiB write still lands.
  const data = randomBytes(65536);
  t.equal((await ini.scsi(write10(100, 128), { write: data })).status, 0, 'write with R2Ts beyond FirstBurstLength');
  const back = await ini.scsi(read10(100, 128), { read: 65536 });
  t.ok(back.data.equals(data), 'reads back');
});

t.test('discovery session: keys irrelevant to discovery, SendTargets=All lists every portal', async (t) => {
  const bg = await startBlockgate({ groups: 2, target: { alias: 'disk-one' } });
  t.teardown(() => bg.stop());
  for (const portal of bg.portals) {
    const ini = await TestInitiator.connect(portal.port);
    t.teardown(() => ini.close());
    await ini.login({ discovery: true, extraKeys: { MaxBurstLength: '65536', InitialR2T: 'Yes' } });
    t.equal(ini.loginKeys.get('MaxBurstLength'), 'Irrelevant');
    t.equal(ini.loginKeys.get('InitialR2T'), 'Irrelevant');
    const text = await ini.text('SendTargets=All\0');
    const pairs = text.split('\0').filter(Boolean);
    t.same(pairs.filter((p) => p.startsWith('TargetName=')), [`TargetName=${TARGET_IQN}`]);
    const addresses = pairs.filter((p) => p.startsWith('TargetAddress=')).sort();
    const want = bg.portals.map((p) => `TargetAddress=127.0.0.1:${p.port},${p.group}`).sort();
    t.same(addresses, want, `portal ${portal.port} lists every portal of every group`);
    const cmd = ini.bhs(0x01, 0x80);
    cmd.writeUInt32BE(ini.itt++, 16);
    cmd.writeUInt32BE(ini.cmdSN++, 24);
    ini.send(cmd);
    const reject = await ini.next((p) => (p.bhs[0]! & 0x3f) === 0x3f);
    t.equal(reject.bhs[2], 0x04, 'a SCSI command in a discovery session is rejected (protocol error)');
    t.ok(reject.data.subarray(0, 48).equals(cmd), 'the Reject carries the offending header');
    const logout = await ini.logout();
    t.equal(logout.bhs[2], 0, 'logout succeeds');
    t.equal(await ini.waitClosed(), true, 'connection closes after logout');
  }
});

t.test('login failures carry the right status class', async (t) => {
  const bg = await startBlockgate({ target: { chap: { user: 'bob', secret: 'initiator-secret-1', mutualUser: 'tgt', mutualSecret: 'target-secret-22' } } });
  t.teardown(() => bg.stop());
  const attempt = async (o: Parameters<TestInitiator['login']>[0]) => {
    const ini = await TestInitiator.connect(bg.port);
    try {
      return await statusOf(ini.login(o));
    } finally {
      ini.close();
    }
  };
  t.equal(await attempt({ targetName: 'iqn.2026-11.dev.blockgate:nope', chap: { user: 'bob', secret: 'initiator-secret-1' } }), '0x0203', 'unknown target: not found');
  t.equal(await attempt({}), '0x0201', 'no CHAP where it is required: authentication failure');
  t.equal(await attempt({ chap: { user: 'bob', secret: 'wrong-secret-000' } }), '0x0201', 'wrong secret');
  t.equal(await attempt({ chap: { user: 'eve', secret: 'initiator-secret-1' } }), '0x0201', 'wrong user');
  t.equal(
    await attempt({ chap: { user: 'bob', secret: 'initiator-secret-1', mutual: { user: 'tgt', secret: 'target-secret-22', reflect: true } } }),
    '0x0201',
    'a reflected challenge is refused',
  );
  t.equal(await attempt({ chap: { user: 'bob', secret: 'initiator-secret-1' } }), 'ok', 'one-way CHAP');
  t.equal(await attempt({ chap: { user: 'bob', secret: 'initiator-secret-1', mutual: { user: 'tgt', secret: 'target-secret-22' } } }), 'ok', 'mutual CHAP: the target proves itself too');

  const ini = await TestInitiator.connect(bg.port);
  t.teardown(() => ini.close());
  // No InitiatorName in the first login request.
  const b = ini.bhs(0x43, 0x80 | (1 << 2) | 3);
  ini.isid.copy(b, 8);
  ini.send(b, Buffer.from(`TargetName=${TARGET_IQN}\0`));
  const r = await ini.next((p) => (p.bhs[0]! & 0x3f) === 0x23);
  t.equal(r.bhs.readUInt16BE(36), 0x0207, 'missing InitiatorName: missing parameter');
  t.equal(await ini.waitClosed(), true, 'and the connection is closed');
});

t.test('digests, sessions, reinstatement, NOP, TMF, logout request on stop', async (t) => {
  const bg = await startBlockgate({ server: { nopIntervalMs: 200 } });
  let stopped = false;
  t.teardown(() => (stopped ? undefined : bg.stop()));

  const d = await TestInitiator.connect(bg.port);
  t.teardown(() => d.close());
  await d.login({ headerDigest: true, dataDigest: true, maxRecvDataSegmentLength: 4096 });
  t.equal(d.loginKeys.get('HeaderDigest'), 'CRC32C');
  t.equal(d.loginKeys.get('DataDigest'), 'CRC32C');
  const payload = randomBytes(48 * 1024);
  t.equal((await d.scsi(write10(0, 96), { write: payload })).status, 0, 'write with digests');
  const got = await d.scsi(read10(0, 96), { read: payload.length });
  t.ok(got.data.equals(payload), 'read with digests, split to the initiator’s 4 KiB segments');

  // Two sessions (different ISIDs) side by side; then a third with the first one's ISID reinstates it.
  const isid = Buffer.from([0x80, 1, 2, 3, 0, 0]);
  const s1 = await TestInitiator.connect(bg.port, isid);
  const s2 = await TestInitiator.connect(bg.port);
  t.teardown(() => [s1, s2].forEach((s) => s.close()));
  await s1.login();
  await s2.login();
  t.not(s1.tsih, s2.tsih, 'separate sessions');
  const again = await TestInitiator.connect(bg.port, isid);
  t.teardown(() => again.close());
  await again.login();
  t.equal(await s1.waitClosed(), true, 'same initiator + ISID with TSIH 0 closes the old session');
  t.equal(s2.closed, false, 'the other session is untouched');

  const ping = await again.nop(Buffer.from('ping-data'));
  t.equal(ping.bhs[0]! & 0x3f, 0x20, 'NOP-Out answered with NOP-In');
  t.equal(ping.data.toString(), 'ping-data', 'ping data echoed');
  await new Promise((r) => setTimeout(r, 500));
  t.ok(again.asyncMessages.some((p) => (p.bhs[0]! & 0x3f) === 0x20), 'target pings the initiator (NOP-In with a TTT)');
  t.equal(again.closed, false, 'an initiator that answers pings stays connected');

  const tmf = async (fn: number, lun: number, ref = 0) => {
    const tag = again.itt++;
    const b = again.bhs(0x02 | 0x40, 0x80 | fn);
    b[9] = lun;
    b.writeUInt32BE(tag, 16);
    b.writeUInt32BE(ref, 20);
    b.writeUInt32BE(again.cmdSN, 24);
    b.writeUInt32BE(again.expStatSN, 28);
    b.writeUInt32BE(again.cmdSN + 5, 32);
    again.send(b);
    const r = await again.next((p) => p.bhs.readUInt32BE(16) === tag);
    return r.bhs[2];
  };
  t.equal(await tmf(1, 0, 0x7777), 1, 'ABORT TASK of an unknown, not yet received task: task does not exist');
  t.equal(await tmf(5, 9), 2, 'LUN RESET of a missing LUN: LUN does not exist');
  t.equal(await tmf(5, 0), 0, 'LUN RESET: function complete');
  t.equal(await tmf(6, 0), 6, 'TARGET WARM RESET, not allowed on this target: function authorization failed');
  t.equal(await tmf(8, 0), 4, 'TASK REASSIGN at ERL 0: not supported');

  // Stopping with a drain asks every initiator to log out (Async event 1).
  const stopping = bg.server.stop({ drainMs: 1000 });
  stopped = true;
  const asyncMsg = await again.next((p) => (p.bhs[0]! & 0x3f) === 0x32);
  t.equal(asyncMsg.bhs[36], 1, 'Async message: logout requested');
  await again.logout();
  await stopping;
  await bg.fabric.close();
});
