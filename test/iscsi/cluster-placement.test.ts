/**
 * iSCSI across cluster members, in one process: two members' iSCSI servers serve one target
 * (one shared disk), each on its own portal group, and follow a stand-in for the set's view
 * of its Primary. Checked with our own initiator: a login at the non-Primary is redirected
 * (status 0x0101, TargetAddress of the Primary's portal), a login while no Primary is known
 * is held until one is, both members report the same group layout and states, a failover
 * moves the states through transitioning with ASYMMETRIC ACCESS STATE CHANGED, the old
 * Primary's sessions are closed (redirect mode), and hosts cannot choose states (SET TARGET
 * PORT GROUPS refused, TPGS implicit only). libiscsi following the redirect: iscsi-inq.
 */
import t, { type Test } from 'tap';
import { EventEmitter } from 'node:events';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { FabricSwitch } from '../../fabric/switch.js';
import { IscsiServer } from '../../gateway/iscsi/server.js';
import type { IscsiTargetConfig } from '../../gateway/iscsi/target-runtime.js';
import { drainUnitAttentions, freePort, INITIATOR_IQN, LoginError, read10, rtpg, run, senseOf, TARGET_IQN, TestInitiator } from '../helpers/iscsi.js';

const AO = 0x0;
const STANDBY = 0x2;
const TRANSITIONING = 0xf;

class FakeView extends EventEmitter {
  primary: { member: string; ready: boolean } | undefined;
  current() {
    return this.primary;
  }
  set(primary: { member: string; ready: boolean } | undefined): void {
    this.primary = primary;
    this.emit('change');
  }
}

interface Members {
  views: Record<'m1' | 'm2', FakeView>;
  servers: Record<'m1' | 'm2', IscsiServer>;
  ports: Record<'m1' | 'm2', number>;
}

async function startMembers(t: Test, standbyLogin: 'redirect' | 'accept'): Promise<Members> {
  const disk = new MemoryBackend({ name: 'disk', size: 16 << 20 });
  const ports = { m1: await freePort(), m2: await freePort() };
  const target: IscsiTargetConfig = {
    name: TARGET_IQN,
    luns: [{ lun: 0, export: 'disk' }],
    portalGroups: [
      { id: 11, member: 'm1', portals: [{ host: '127.0.0.1', port: ports.m1 }] },
      { id: 12, member: 'm2', portals: [{ host: '127.0.0.1', port: ports.m2 }] },
    ],
    aluaPolicy: 'active-passive',
    standbyLogin,
  };
  const views = { m1: new FakeView(), m2: new FakeView() };
  const servers = {} as Record<'m1' | 'm2', IscsiServer>;
  for (const id of ['m1', 'm2'] as const) {
    const fabric = new FabricSwitch();
    // Both members reach the same disk (a shared backend); the switch does not own it.
    fabric.addDevice(Object.assign(Object.create(disk) as MemoryBackend, { close: () => Promise.resolve() }));
    fabric.addExport({ name: 'disk', device: 'disk' });
    servers[id] = new IscsiServer({ fabric, targets: [target], nopIntervalMs: 0, cluster: { memberId: id, primaryOf: () => views[id] } });
    await servers[id].start();
    t.teardown(async () => {
      await servers[id].stop({ drainMs: 0 });
      await fabric.close();
    });
  }
  t.teardown(() => disk.close());
  return { views, servers, ports };
}

function setPrimary(m: Members, primary: { member: string; ready: boolean } | undefined): void {
  m.views.m1.set(primary);
  m.views.m2.set(primary);
}

async function loginAt(port: number): Promise<TestInitiator> {
  const ini = await TestInitiator.connect(port);
  await ini.login();
  return ini;
}



t.test('redirect mode: the non-Primary sends logins to the Primary; a login waits while nobody is Primary', async (t) => {
  const m = await startMembers(t, 'redirect');
  setPrimary(m, { member: 'm1', ready: true });

  const atM2 = await TestInitiator.connect(m.ports.m2);
  t.teardown(() => atM2.close());
  const err = await atM2.login().then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof LoginError, 'the login at m2 does not succeed');
  t.equal((err as LoginError).statusClass, 0x01, 'status class 1: redirection');
  t.equal((err as LoginError).statusDetail, 0x01, 'detail 1: target moved temporarily');
  t.equal((err as LoginError).keys.get('TargetAddress'), `127.0.0.1:${m.ports.m1},11`, "TargetAddress names m1's portal and group");

  const atM1 = await loginAt(m.ports.m1);
  t.teardown(() => atM1.close());
  t.equal(atM1.loginKeys.get('TargetPortalGroupTag'), '11', "the session runs on m1's group");
  await drainUnitAttentions(atM1);
  const states = await rtpg(atM1);
  t.same([...states], [[11, AO], [12, STANDBY]], "m1's group active/optimized, m2's standby");

  // Failover: nobody is Primary for a while. A login at m2 is held, not refused...
  setPrimary(m, undefined);
  const held = await TestInitiator.connect(m.ports.m2);
  t.teardown(() => held.close());
  let settled = false;
  const login = held.login().finally(() => (settled = true));
  await new Promise((r) => setTimeout(r, 600));
  t.notOk(settled, 'the login is held while no Primary is known');
  // ...m2 wins, and opens its ports a little later: the login is served once it has.
  setPrimary(m, { member: 'm2', ready: false });
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(settled, 'still held while the new Primary opens its ports');
  setPrimary(m, { member: 'm2', ready: true });
  await login;
  t.equal(held.loginKeys.get('TargetPortalGroupTag'), '12', "the held login was served on m2's group");
  await drainUnitAttentions(held);
  t.same([...(await rtpg(held))], [[11, STANDBY], [12, AO]], 'after the failover m2 is active/optimized, m1 standby');

  // m1 lost the role: its sessions were closed so its initiators log in again and are sent on.
  t.ok(await atM1.waitClosed(), "m1's session was closed when m1 stopped being Primary");
  const again = await TestInitiator.connect(m.ports.m1);
  t.teardown(() => again.close());
  const err2 = await again.login().then(
    () => undefined,
    (e: unknown) => e,
  );
  t.equal((err2 as LoginError).keys?.get('TargetAddress'), `127.0.0.1:${m.ports.m2},12`, 'm1 now redirects to m2');
});

t.test('libiscsi follows the redirect (iscsi-inq through the non-Primary)', async (t) => {
  const m = await startMembers(t, 'redirect');
  setPrimary(m, { member: 'm1', ready: true });
  const inq = await run('iscsi-inq', ['-i', INITIATOR_IQN, `iscsi://127.0.0.1:${m.ports.m2}/${TARGET_IQN}/0`]);
  t.equal(inq.code, 0, `iscsi-inq through m2 succeeded: ${inq.stderr}`);
  t.match(inq.stdout, /BLOCKGAT/, 'and read the INQUIRY data (from m1)');
});

t.test('accept mode: sessions on both members, the same layout and states everywhere, failover through transitioning', async (t) => {
  const m = await startMembers(t, 'accept');
  setPrimary(m, { member: 'm1', ready: true });
  const a = await loginAt(m.ports.m1);
  const b = await loginAt(m.ports.m2);
  t.teardown(() => {
    a.close();
    b.close();
  });
  await drainUnitAttentions(a);
  await drainUnitAttentions(b);
  const [ra, rb] = [await rtpg(a), await rtpg(b)];
  t.same([...ra], [[11, AO], [12, STANDBY]], 'm1 reports m1 active/optimized, m2 standby');
  t.same([...rb], [...ra], 'm2 reports the same layout and states');
  t.equal((await a.scsi(read10(0, 8), { read: 4096 })).status, 0, 'reads run on the Primary');
  const standbyRead = await b.scsi(read10(0, 8), { read: 4096 });
  t.same(senseOf(standbyRead.sense), { key: 0x2, asc: 0x04, ascq: 0x0b }, 'reads on the standby member: NOT READY, TARGET PORT IN STANDBY STATE');

  // Hosts cannot move the Primary with ALUA commands: TPGS says implicit only.
  const inq = await b.scsi(Buffer.from([0x12, 0, 0, 0, 96, 0]), { read: 96 });
  t.equal((inq.data[5]! >> 4) & 3, 1, 'INQUIRY TPGS = 01b (implicit ALUA only)');
  const stpg = await b.scsi(Buffer.from([0xa4, 0x0a, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0]), { write: Buffer.from([0, 0, 0, 0, 0, 0, 0, 12]) });
  t.same(senseOf(stpg.sense), { key: 0x5, asc: 0x20, ascq: 0x00 }, 'SET TARGET PORT GROUPS: ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE');

  // m1 dies (from m2's point of view): no Primary, then m2 elected and opening its ports.
  m.views.m2.set(undefined);
  const uas = await drainUnitAttentions(b);
  t.ok(uas.includes('2a/06'), `the session on m2 gets ASYMMETRIC ACCESS STATE CHANGED (saw ${uas.join(', ')})`);
  t.same([...(await rtpg(b))], [[11, TRANSITIONING], [12, TRANSITIONING]], 'while nobody is Primary every group is transitioning');
  const during = await b.scsi(read10(0, 8), { read: 4096 });
  t.same(senseOf(during.sense), { key: 0x2, asc: 0x04, ascq: 0x0a }, 'media commands: NOT READY, ASYMMETRIC ACCESS STATE TRANSITION (hosts retry)');
  m.views.m2.set({ member: 'm2', ready: false });
  await drainUnitAttentions(b);
  t.same([...(await rtpg(b))], [[11, STANDBY], [12, TRANSITIONING]], 'm2 elected, still opening its ports: its group transitioning');
  m.views.m2.set({ member: 'm2', ready: true });
  t.same(await drainUnitAttentions(b), ['2a/06'], 'told again when the states settle');
  t.same([...(await rtpg(b))], [[11, STANDBY], [12, AO]], 'm2 active/optimized');
  t.equal((await b.scsi(read10(0, 8), { read: 4096 })).status, 0, 'reads now run on m2');
  t.notOk(b.closed, 'accept mode keeps sessions: ALUA moves the host between paths');
});
