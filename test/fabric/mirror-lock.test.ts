/**
 * One range lock per device, mirror included: the switch lends the mirror's own lock to its
 * exports, so a SCSI COMPARE AND WRITE hold, host writes through any front end and the
 * mirror's resync copies all meet in the same lock.
 */
import t from 'tap';
import { FabricSwitch } from '../../fabric/switch.js';
import { act, faultyMemory, KiB, MiB, openMirror, pattern, readAll, replicaState, tempDir } from '../helpers/mirror-fixture.js';

const REGION = 64 * KiB;

t.test("the export's range lock is the mirror's, and host writes wait for its holds", async (t) => {
  const [a, b] = faultyMemory(['a', 'b'], MiB);
  const m = await openMirror(t, { replicas: [a!, b!], dataDir: await tempDir(t) });
  const fabric = new FabricSwitch();
  t.teardown(() => fabric.close());
  fabric.addDevice(m);
  const entry = fabric.addExport({ name: 'e', device: 'm0' });
  t.equal(entry.device.rangeLock, m.rangeLock, 'one lock: the switch lends the mirror its own');
  const channel = fabric.openChannel('e', { id: 'test', protocol: 'nbd' });

  const hold = await m.rangeLock.exclusive(0, REGION);
  let done = false;
  const write = channel.write(4096, [pattern(4096, 1)]).then(() => (done = true));
  const elsewhere = channel.write(2 * REGION, [pattern(4096, 2)]);
  await elsewhere;
  await new Promise((r) => setTimeout(r, 50));
  t.notOk(done, 'a write into the held range waits');
  await channel.write(4096, [pattern(4096, 3)], { hold }).catch((err: unknown) => t.fail(String(err)));
  t.pass("the holder's own write passes");
  hold.release();
  await write;
  t.ok(done, 'and goes on once the hold is released');
  t.ok((await readAll(a!, 8192)).subarray(4096).equals(pattern(4096, 1)), 'in order: the waiting write landed last');
});

t.test('a resync copy waits for a hold on its region, then copies what the holder wrote', async (t) => {
  const [a, b] = faultyMemory(['a', 'b'], MiB);
  const m = await openMirror(t, { replicas: [a!, b!], dataDir: await tempDir(t), resync: { rateMiBps: 0, regionSize: REGION } });
  a!.down();
  await m.write(0, [pattern(4 * REGION, 4)]);
  a!.up();
  const hold = await m.rangeLock.exclusive(REGION, 2 * REGION);
  await act(m, 'reintegrate', { replica: 'a' });
  await new Promise((r) => setTimeout(r, 100));
  t.equal(replicaState(m, 'a'), 'resyncing', 'the resync is stuck behind the hold');
  t.ok(m.bytesResynced <= REGION, `it copied at most the region before the held one (${m.bytesResynced})`);
  await m.write(REGION, [pattern(4096, 5)], { hold });
  hold.release();
  await m.resyncIdle();
  t.equal(replicaState(m, 'a'), 'in-sync');
  t.ok((await readAll(a!)).equals(await readAll(b!)), 'the replicas are identical');
});
