/**
 * COMPARE AND WRITE over iSCSI stays atomic against NBD writes to the same export: both
 * front ends write through the device's one range lock (fabric/range-lock.ts). The device
 * holds CAW's read of the medium until an overlapping NBD write has been dispatched; without
 * a shared lock that write lands between CAW's compare and its write and is silently lost.
 */
import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { Layer } from '../../fabric/layer.js';
import { FabricSwitch } from '../../fabric/switch.js';
import { IscsiServer } from '../../gateway/iscsi/server.js';
import { NbdServer } from '../../gateway/nbd/server.js';
import { TARGET_IQN, TestInitiator } from '../helpers/iscsi.js';
import { RawNbdClient } from '../helpers/nbd.js';

const BLOCK = 512;
const LBA = 100;
/** NBD command types (NBD protocol spec, "Request types"). */
const NBD_CMD_READ = 0;
const NBD_CMD_WRITE = 1;
const COMPARE_AND_WRITE = 0x89;

/** Reads the medium, then keeps the result back from its caller while `held` is pending. */
class HeldReads extends Layer {
  private hold: { offset: number; reached: () => void; until: Promise<void> } | null = null;

  /** The next read at `offset` returns only after `until`; resolves once that read happened. */
  holdNextRead(offset: number, until: Promise<void>): Promise<void> {
    return new Promise((reached) => (this.hold = { offset, reached, until }));
  }

  override async read(offset: number, target: Buffer): Promise<void> {
    await this.next.read(offset, target);
    const hold = this.hold;
    if (hold && hold.offset === offset) {
      this.hold = null;
      hold.reached();
      await hold.until;
    }
  }
}

function cawCdb(lba: number, blocks: number): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = COMPARE_AND_WRITE;
  cdb.writeBigUInt64BE(BigInt(lba), 2);
  cdb[13] = blocks;
  return cdb;
}

const device = new HeldReads(new MemoryBackend({ name: 'shared', size: 8 << 20 }));
const fabric = new FabricSwitch();
fabric.addDevice(device);
fabric.addExport({ name: 'shared', device: 'shared' });
const nbd = new NbdServer({ fabric, listen: [{ host: '127.0.0.1', port: 0 }] });
await nbd.start();
const iscsi = new IscsiServer({
  fabric,
  nopIntervalMs: 0,
  targets: [{ name: TARGET_IQN, luns: [{ lun: 0, export: 'shared' }], portalGroups: [{ id: 1, portals: [{ host: '127.0.0.1', port: 0 }] }], aluaPolicy: 'active-active' }],
});
await iscsi.start();
t.teardown(async () => {
  await iscsi.stop({ drainMs: 0 });
  await nbd.stop({ drainMs: 0 });
  await fabric.close();
});

const nbdPort = (nbd.addresses()[0] as { port: number }).port;
const client = await RawNbdClient.open({ port: nbdPort });
await client.go('shared');
t.teardown(() => client.destroy());
const ini = await TestInitiator.connect(iscsi.addresses()[0]!.port);
t.teardown(() => ini.close());
await ini.login();
// Power-on unit attention out of the way.
await ini.scsi(Buffer.alloc(6));

let cookie = 1n;
async function nbdWrite(offset: number, data: Buffer): Promise<number> {
  const c = cookie++;
  client.request(NBD_CMD_WRITE, { cookie: c, offset, payload: data });
  const r = await client.readSimple();
  if (r.cookie !== c) throw new Error(`reply for cookie ${r.cookie}, expected ${c}`);
  return r.error;
}

async function nbdRead(offset: number, length: number): Promise<Buffer> {
  const c = cookie++;
  client.request(NBD_CMD_READ, { cookie: c, offset, length });
  const r = await client.readSimple(length);
  return r.payload;
}

const block = (byte: number) => Buffer.alloc(BLOCK, byte);

for (let round = 1; round <= 3; round++) {
  t.test(`round ${round}: an NBD write racing a COMPARE AND WRITE is not lost`, async (t) => {
    const [a, b, c] = [block(0xa0 + round), block(0xb0 + round), block(0xc0 + round)];
    t.equal(await nbdWrite(LBA * BLOCK, a), 0, 'block set to A');

    let letRead!: () => void;
    const reached = device.holdNextRead(LBA * BLOCK, new Promise<void>((resolve) => (letRead = resolve)));
    const caw = ini.scsi(cawCdb(LBA, 1), { write: Buffer.concat([a, b]) });
    await reached;

    // CAW has read A and is about to compare. An NBD write of C to the same block now,
    // then a read of another block on the same connection: once the read is answered the
    // server has dispatched the write (requests are parsed in order).
    const writeCookie = cookie++;
    client.request(NBD_CMD_WRITE, { cookie: writeCookie, offset: LBA * BLOCK, payload: c });
    const probeCookie = cookie++;
    client.request(NBD_CMD_READ, { cookie: probeCookie, offset: 0, length: BLOCK });
    const first = await client.readSimple();
    let writeAnswered = first.cookie === writeCookie;
    if (!writeAnswered) await client.read(BLOCK); // the probe's data
    t.comment(writeAnswered ? 'the NBD write completed while CAW held its read' : 'the NBD write waits for CAW');

    letRead();
    const cawReply = await caw;
    if (!writeAnswered) {
      const r = await client.readSimple();
      t.equal(r.cookie, writeCookie, 'the held NBD write is answered after CAW');
      t.equal(r.error, 0, 'the NBD write succeeded');
      writeAnswered = true;
    } else {
      // The probe read's reply is still to come.
      const r = await client.readSimple(BLOCK);
      t.equal(r.cookie, probeCookie);
    }
    t.equal(cawReply.status, 0, 'CAW: GOOD (it compared A against A)');
    const final = await nbdRead(LBA * BLOCK, BLOCK);
    // Serialisable outcomes with CAW GOOD: CAW then the NBD write, so the block holds C.
    // B means the NBD write was acknowledged and then overwritten by a CAW that compared
    // against data older than it.
    t.ok(final.equals(c), `the block holds the NBD write (C), not CAW's B: got 0x${final[0]!.toString(16)}`);
  });
}
