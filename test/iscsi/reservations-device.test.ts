/**
 * Reservations belong to the device: one export mapped as a LUN of two targets has one
 * reservation state (a reservation taken through one target holds through the other, its
 * unit attentions reach the other), NBD clients get EPERM where a reservation forbids
 * them access, and one initiator cannot reset the target under the others unless allowed.
 */
import t, { type Test } from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { FabricSwitch } from '../../fabric/switch.js';
import { IscsiServer } from '../../gateway/iscsi/server.js';
import type { IscsiTargetConfig } from '../../gateway/iscsi/target-config.js';
import { NbdServer } from '../../gateway/nbd/server.js';
import { DeviceReservations } from '../../gateway/scsi/device-reservations.js';
import { ReservationFence } from '../../gateway/scsi/reservation-fence.js';
import { MemoryReservationStore } from '../../gateway/scsi/reservation-store.js';
import { NBD_CMD_READ, NBD_CMD_WRITE, NBD_EPERM } from '../../fabric/protocols/nbd.js';
import { FaultyDevice } from '../helpers/faulty.js';
import { read10, senseOf, TestInitiator, write10 } from '../helpers/iscsi.js';
import { A, cdb10, dataIn, makeTarget } from '../helpers/scsi-fixtures.js';
import { RawNbdClient } from '../helpers/nbd.js';
import { runTool } from '../helpers/clients.js';

const T1 = 'iqn.2026-11.dev.blockgate:one';
const T2 = 'iqn.2026-11.dev.blockgate:two';
const HOST_A = 'iqn.2026-11.dev.blockgate:host-a';
const HOST_B = 'iqn.2026-11.dev.blockgate:host-b';
const GOOD = 0;
const CONFLICT = 0x18;
const WE = 1;
const EA = 3;
const MiB = 1024 * 1024;

function target(name: string, lun: number, extra: Partial<IscsiTargetConfig> = {}): IscsiTargetConfig {
  return { name, luns: [{ lun, export: 'disk' }], portalGroups: [{ id: 1, portals: [{ host: '127.0.0.1', port: 0 }] }], aluaPolicy: 'active-active', ...extra };
}

/** One device, exported once, as LUN 0 of T1 and LUN 3 of T2, and over NBD; one reservation registry for all. */
async function member(t: Test, targets = [target(T1, 0), target(T2, 3)]) {
  const device = new FaultyDevice(new MemoryBackend({ name: 'shared', size: 16 * MiB }));
  const fabric = new FabricSwitch();
  fabric.addDevice(device);
  fabric.addExport({ name: 'disk', device: 'shared' });
  const reservations = new DeviceReservations();
  const iscsi = new IscsiServer({ fabric, targets, reservations, nopIntervalMs: 0 });
  const nbd = new NbdServer({ fabric, listen: [{ host: '127.0.0.1', port: 0 }], guard: (d) => new ReservationFence(d, () => reservations) });
  await iscsi.start();
  await nbd.start();
  t.teardown(async () => {
    await nbd.stop({ drainMs: 0 });
    await iscsi.stop({ drainMs: 0 });
    await fabric.close();
  });
  const portOf = (name: string) => iscsi.addresses().find((a) => a.target === name)!.port;
  const nbdPort = (nbd.addresses()[0] as { port: number }).port;
  const login = async (targetName: string, initiatorName: string) => {
    const ini = await TestInitiator.connect(portOf(targetName));
    t.teardown(() => ini.close());
    await ini.login({ targetName, initiatorName });
    return ini;
  };
  return { device, iscsi, nbdPort, login };
}

const prout = (ini: TestInitiator, lun: number, sa: number, o: { key?: bigint; sakey?: bigint; type?: number } = {}) => {
  const list = Buffer.alloc(24);
  list.writeBigUInt64BE(o.key ?? 0n, 0);
  list.writeBigUInt64BE(o.sakey ?? 0n, 8);
  return ini.scsi(Buffer.from([0x5f, sa, o.type ?? 0, 0, 0, 0, 0, 0, 24, 0]), { lun, write: list });
};
const readKeys = async (ini: TestInitiator, lun: number) => {
  const d = (await ini.scsi(Buffer.from([0x5e, 0, 0, 0, 0, 0, 0, 0x10, 0, 0]), { lun, read: 4096 })).data;
  const keys: bigint[] = [];
  for (let at = 8; at < 8 + d.readUInt32BE(4); at += 8) keys.push(d.readBigUInt64BE(at));
  return keys;
};
const readAt = (ini: TestInitiator, lun: number) => ini.scsi(read10(0, 1), { lun, read: 512 }).then((r) => r.status);
const writeAt = (ini: TestInitiator, lun: number) => ini.scsi(write10(0, 1), { lun, write: Buffer.alloc(512, 7) }).then((r) => r.status);
/** Test unit ready until the pending unit attentions are consumed; returns their ASC/ASCQ. */
async function unitAttentions(ini: TestInitiator, lun: number): Promise<string[]> {
  const seen: string[] = [];
  for (;;) {
    const r = await ini.scsi(Buffer.alloc(6), { lun });
    const s = senseOf(r.sense);
    if (r.status === GOOD || !s || s.key !== 6) return seen;
    seen.push(`${s.asc.toString(16)}/${s.ascq.toString(16)}`);
  }
}

t.test('one reservation state for a device mapped under two targets', async (t) => {
  const m = await member(t);
  const a = await m.login(T1, HOST_A);
  const b = await m.login(T2, HOST_B);
  await unitAttentions(a, 0);
  await unitAttentions(b, 3);
  t.equal((await prout(a, 0, 0, { sakey: 0xaan })).status, GOOD, 'A registers through T1');
  t.equal((await prout(a, 0, 1, { key: 0xaan, type: EA })).status, GOOD, 'and takes an Exclusive Access reservation');
  t.same(await readKeys(b, 3), [0xaan], 'T2 sees the same registrations');
  t.equal(await writeAt(b, 3), CONFLICT, 'a write through the other target: RESERVATION CONFLICT');
  t.equal(await readAt(b, 3), CONFLICT, 'a read too (Exclusive Access)');
  t.equal(await writeAt(a, 0), GOOD, 'the holder writes');

  t.equal((await prout(b, 3, 0, { sakey: 0xbbn })).status, GOOD, 'B registers through T2');
  t.equal((await prout(a, 0, 4, { key: 0xaan, sakey: 0xbbn, type: EA })).status, GOOD, 'A preempts B');
  t.same(await unitAttentions(b, 3), ['2a/5'], 'B hears REGISTRATIONS PREEMPTED on its own LUN number');
  t.same(await readKeys(b, 3), [0xaan]);
  t.equal((await prout(a, 0, 2, { key: 0xaan, type: EA })).status, GOOD, 'A releases');
  t.equal(await writeAt(b, 3), GOOD, 'B writes again');
});

t.test('RESERVE(6) through one target holds through the other', async (t) => {
  const m = await member(t);
  const a = await m.login(T1, HOST_A);
  const b = await m.login(T2, HOST_B);
  await unitAttentions(a, 0);
  await unitAttentions(b, 3);
  t.equal((await a.scsi(Buffer.from([0x16, 0, 0, 0, 0, 0]))).status, GOOD);
  t.equal(await readAt(b, 3), CONFLICT);
  t.equal((await a.scsi(Buffer.from([0x17, 0, 0, 0, 0, 0]))).status, GOOD);
  t.equal(await readAt(b, 3), GOOD);
});

t.test('NBD clients get EPERM where a SCSI reservation denies them access', async (t) => {
  const m = await member(t);
  const a = await m.login(T1, HOST_A);
  await unitAttentions(a, 0);
  const nbd = await RawNbdClient.open({ port: m.nbdPort });
  t.teardown(() => nbd.destroy());
  await nbd.go('disk');
  const nbdWrite = async () => {
    nbd.request(NBD_CMD_WRITE, { cookie: 1n, offset: 0, payload: Buffer.alloc(512, 1) });
    return (await nbd.readSimple()).error;
  };
  const nbdRead = async () => {
    nbd.request(NBD_CMD_READ, { cookie: 2n, offset: 0, length: 512 });
    return (await nbd.readSimple(512)).error;
  };
  t.equal(await nbdWrite(), 0, 'no reservation: the NBD write succeeds');

  await prout(a, 0, 0, { sakey: 0x11n });
  t.equal((await prout(a, 0, 1, { key: 0x11n, type: WE })).status, GOOD, 'Write Exclusive taken over iSCSI');
  const writes = m.device.ops.write;
  t.equal(await nbdWrite(), NBD_EPERM, 'NBD write: EPERM');
  t.equal(m.device.ops.write, writes, 'nothing reached the device');
  t.equal(await nbdRead(), 0, 'NBD read still allowed under Write Exclusive');
  const qemu = await runTool('qemu-io', ['-f', 'raw', '-c', 'write -P 0x55 0 4k', `nbd://127.0.0.1:${m.nbdPort}/disk`], { allowFailure: true });
  t.match(qemu.stdout + qemu.stderr, /Operation not permitted/, 'qemu-io reports it');

  t.equal((await prout(a, 0, 1, { key: 0x11n, type: WE })).status, GOOD);
  t.equal((await prout(a, 0, 2, { key: 0x11n, type: WE })).status, GOOD, 'released');
  t.equal((await prout(a, 0, 1, { key: 0x11n, type: EA })).status, GOOD, 'Exclusive Access taken');
  t.equal(await nbdRead(), NBD_EPERM, 'NBD read: EPERM under Exclusive Access');
  t.equal((await prout(a, 0, 2, { key: 0x11n, type: EA })).status, GOOD, 'released');
  t.equal(await nbdWrite(), 0, 'NBD writes again');

  t.equal((await a.scsi(Buffer.from([0x16, 0, 0, 0, 0, 0]))).status, CONFLICT, 'RESERVE(6) refused while registered');
  await prout(a, 0, 0, { key: 0x11n, sakey: 0n });
  t.equal((await a.scsi(Buffer.from([0x16, 0, 0, 0, 0, 0]))).status, GOOD, 'RESERVE(6)');
  t.equal(await nbdRead(), NBD_EPERM, 'NBD read: EPERM under RESERVE(6)');
  t.equal(await nbdWrite(), NBD_EPERM, 'NBD write: EPERM under RESERVE(6)');
});

t.test('TARGET WARM/COLD RESET: refused unless the target allows it', async (t) => {
  for (const allowTargetReset of [false, true]) {
    const m = await member(t, [target(T1, 0, { allowTargetReset })]);
    const a = await m.login(T1, HOST_A);
    const b = await m.login(T1, HOST_B);
    await unitAttentions(a, 0);
    await unitAttentions(b, 0);
    m.device.hold('read');
    const tag = b.command(read10(0, 1), { read: 512 });
    while (m.device.held.read === 0) await new Promise((r) => setTimeout(r, 5));
    for (const fn of [6, 7]) {
      if (fn === 7 && allowTargetReset) break; // a cold reset also drops A's own connection
      const tmf = a.bhs(0x02 | 0x40, 0x80 | fn);
      const tmfTag = a.itt++;
      tmf.writeUInt32BE(tmfTag, 16);
      tmf.writeUInt32BE(0xffffffff, 20);
      tmf.writeUInt32BE(a.cmdSN, 24);
      tmf.writeUInt32BE(a.expStatSN, 28);
      a.send(tmf);
      const answer = await a.next((p) => p.bhs.readUInt32BE(16) === tmfTag);
      t.equal(answer.bhs[2], allowTargetReset ? 0 : 6, `${fn === 6 ? 'warm' : 'cold'} reset with allowTargetReset ${allowTargetReset}: ${allowTargetReset ? 'function complete' : 'function authorization failed'}`);
    }
    m.device.release();
    if (allowTargetReset) await t.rejects(b.response(tag, 500), "the other initiator's task was aborted");
    else t.equal((await b.response(tag)).bhs[3], GOOD, "the other initiator's task went on");
  }
});

t.test('a reservation stored per target and LUN (before it was per device) is read at start', async (t) => {
  const store = new MemoryReservationStore();
  await store.save('iqn.2026-11.test.blockgate:t1|disk0', {
    generation: 3,
    aptpl: true,
    registrations: [{ initiatorPort: 'iqn.2026-11.test:host1,i,0x400001370000', relativeTargetPortId: 1, allTargetPorts: false, key: '00000000000000aa' }],
    reservation: { type: WE, scope: 0, holder: { initiatorPort: 'iqn.2026-11.test:host1,i,0x400001370000', relativeTargetPortId: 1 } },
  });
  const f = makeTarget({ store });
  const keys = dataIn(await f.run([0x5e, 0, 0, 0, 0, 0, 0, 0x10, 0, 0], { nexus: A }));
  t.equal(keys.readBigUInt64BE(8), 0xaan, 'the old registration is there');
  t.equal((await f.run(cdb10(0x2a, 0, 1), { nexus: A, data: Buffer.alloc(512) })).status, GOOD, 'and still holds the reservation');
  const list = Buffer.alloc(24);
  list.writeBigUInt64BE(0xaan, 0);
  list.writeBigUInt64BE(0xabn, 8);
  list[20] = 1;
  await f.run([0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0], { nexus: A, data: list });
  t.equal(store.load('device/mem')?.registrations[0]?.key, '00000000000000ab', 'saved under the device from then on');
});
