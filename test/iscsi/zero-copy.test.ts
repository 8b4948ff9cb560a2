/**
 * The iSCSI data path copies no payload: Data-Out slices go to the device as received and
 * Data-In leaves as slices of the read buffer (fabric/copies.ts counts deliberate copies).
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { copyStats, resetCopyStats } from '../../fabric/copies.js';
import { read10, startBlockgate, TestInitiator, write10 } from '../helpers/iscsi.js';

t.test('writes through R2T bursts and reads split into Data-In PDUs copy nothing', async (t) => {
  const bg = await startBlockgate({ server: { limits: { firstBurstLength: 65536, maxBurstLength: 262144 } } });
  t.teardown(() => bg.stop());
  const ini = await TestInitiator.connect(bg.port);
  t.teardown(() => ini.close());
  await ini.login({ maxRecvDataSegmentLength: 16384 });
  const data = randomBytes(4 * 1024 * 1024);
  resetCopyStats();
  t.equal((await ini.scsi(write10(2048, data.length / 512), { write: data })).status, 0, '4 MiB write in 16 bursts');
  const back = await ini.scsi(read10(2048, data.length / 512), { read: data.length });
  t.equal(back.status, 0);
  t.ok(back.data.equals(data), 'data intact');
  t.equal(copyStats.transfer, 0, 'no bytes copied between socket and device');
  t.equal(copyStats.stored, 2 * data.length, 'the medium itself saw each byte once in and once out');
});
