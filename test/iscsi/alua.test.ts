/**
 * Front-end port failover (ALUA): one target, two portal groups on two portals. Our test
 * initiator logs in through both, reads REPORT TARGET PORT GROUPS on each, then watches an
 * active-passive failover: transitioning, unit attention, new states.
 */
import t from 'tap';
import { drainUnitAttentions, rtpg, senseOf, startBlockgate, TARGET_IQN, TestInitiator, read10 } from '../helpers/iscsi.js';

const AO = 0x0;
const STANDBY = 0x2;
const UNAVAILABLE = 0x3;
const TRANSITIONING = 0xf;
const NOT_READY = 0x2;



t.test('active-passive: RTPG through both portals, failover with unit attention', async (t) => {
  const bg = await startBlockgate({ groups: 2, target: { aluaPolicy: 'active-passive' }, server: { aluaTransitionMs: 1500 } });
  t.teardown(() => bg.stop());
  t.equal(bg.portals.length, 2, 'two portals');
  const [p1, p2] = bg.portals.sort((a, b) => a.group - b.group);

  const a = await TestInitiator.connect(p1!.port);
  const b = await TestInitiator.connect(p2!.port);
  t.teardown(() => {
    a.close();
    b.close();
  });
  await a.login();
  await b.login();
  t.equal(a.loginKeys.get('TargetPortalGroupTag'), '1', 'portal 1 is in group 1');
  t.equal(b.loginKeys.get('TargetPortalGroupTag'), '2', 'portal 2 is in group 2');
  await drainUnitAttentions(a);
  await drainUnitAttentions(b);

  const before = [await rtpg(a), await rtpg(b)];
  for (const groups of before) {
    t.equal(groups.get(1), AO, 'group 1 active/optimized');
    t.equal(groups.get(2), STANDBY, 'group 2 standby');
  }
  const readA = await a.scsi(read10(0, 8), { read: 4096 });
  t.equal(readA.status, 0, 'reads work through the active group');
  const readB = await b.scsi(read10(0, 8), { read: 4096 });
  t.equal(readB.status, 2, 'reads through the standby group fail…');
  t.same(senseOf(readB.sense), { key: NOT_READY, asc: 0x04, ascq: 0x0b }, '…with NOT READY, TARGET PORT IN STANDBY STATE');

  // Portal group 1 goes out of service: group 2 takes over, through transitioning.
  const failover = bg.server.setPortalGroupService(TARGET_IQN, 1, false);
  const uas = await drainUnitAttentions(b);
  t.ok(uas.includes('2a/06'), `initiator on portal 2 gets ASYMMETRIC ACCESS STATE CHANGED (saw ${uas.join(', ')})`);
  const during = await rtpg(b);
  t.equal(during.get(2), TRANSITIONING, 'group 2 is transitioning on its way to active');
  await failover;
  await drainUnitAttentions(b);
  const after = await rtpg(b);
  t.equal(after.get(1), UNAVAILABLE, 'group 1 unavailable');
  t.equal(after.get(2), AO, 'group 2 active/optimized');
  const readB2 = await b.scsi(read10(0, 8), { read: 4096 });
  t.equal(readB2.status, 0, 'reads now work through portal 2');

  const uasA = await drainUnitAttentions(a);
  t.ok(uasA.includes('2a/06'), 'initiator on portal 1 is told too');
  const readA2 = await a.scsi(read10(0, 8), { read: 4096 });
  t.equal(readA2.status, 2, 'portal 1 no longer serves media commands');
  t.same(senseOf(readA2.sense), { key: NOT_READY, asc: 0x04, ascq: 0x0c }, 'NOT READY, TARGET PORT IN UNAVAILABLE STATE');

  // Back in service: standby, since group 2 is active now.
  await bg.server.setPortalGroupService(TARGET_IQN, 1, true);
  await drainUnitAttentions(a);
  const back = await rtpg(a);
  t.equal(back.get(1), STANDBY, 'group 1 returns as standby');
  t.equal(back.get(2), AO, 'group 2 stays active');
});

t.test('active-active: every group active/optimized, I/O through both portals', async (t) => {
  const bg = await startBlockgate({ groups: 2 });
  t.teardown(() => bg.stop());
  const sessions = await Promise.all(bg.portals.map((p) => TestInitiator.connect(p.port)));
  t.teardown(() => sessions.forEach((s) => s.close()));
  for (const s of sessions) {
    await s.login();
    await drainUnitAttentions(s);
    const groups = await rtpg(s);
    t.same([...groups.values()], [AO, AO], 'both groups active/optimized');
    t.equal((await s.scsi(read10(0, 1), { read: 512 })).status, 0, 'I/O works');
  }
});
