import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { RangeLockedDevice } from '../../fabric/layers/range-locked.js';
import { RangeLock } from '../../fabric/range-lock.js';
import { FabricSwitch } from '../../fabric/switch.js';

/** A write the test finishes by hand, recording when it started. */
function manual(log: string[], name: string) {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return {
    io: () => {
      log.push(`${name} start`);
      return done.then(() => void log.push(`${name} end`));
    },
    finish,
  };
}

/** Let every queued callback run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

t.test('writes overlap each other freely and start at once', async (t) => {
  const lock = new RangeLock();
  const log: string[] = [];
  const a = manual(log, 'a');
  const b = manual(log, 'b');
  const pa = lock.write(0, 100, a.io);
  const pb = lock.write(50, 150, b.io);
  t.same(log, ['a start', 'b start'], 'both started synchronously');
  a.finish();
  b.finish();
  await Promise.all([pa, pb]);
});

t.test('an exclusive hold waits for writes in flight, then keeps overlapping writes out', async (t) => {
  const lock = new RangeLock();
  const log: string[] = [];
  const w1 = manual(log, 'w1');
  const p1 = lock.write(0, 100, w1.io);
  let granted = false;
  const held = lock.exclusive(50, 60).then((h) => {
    granted = true;
    log.push('hold');
    return h;
  });
  await settle();
  t.notOk(granted, 'not granted while a write that may overlap is in flight');
  const inside = manual(log, 'inside');
  const outside = manual(log, 'outside');
  const pIn = lock.write(55, 56, inside.io);
  const pOut = lock.write(200, 300, outside.io);
  t.same(log, ['w1 start', 'outside start'], 'a write outside the range runs; one inside waits for the pending hold');
  outside.finish();
  w1.finish();
  const hold = await held;
  t.ok(granted);
  t.ok(lock.isLocked(0, 51));
  await settle();
  t.notOk(log.includes('inside start'), 'the overlapping write still waits');
  hold.release();
  await settle();
  t.ok(log.includes('inside start'), 'and runs once the hold is released');
  inside.finish();
  await Promise.all([p1, pIn, pOut]);
  t.notOk(lock.isLocked(0, 1000));
});

t.test('overlapping exclusive holds are granted in the order asked', async (t) => {
  const lock = new RangeLock();
  const order: string[] = [];
  const first = await lock.exclusive(0, 10);
  const second = lock.exclusive(5, 15).then((h) => (order.push('second'), h));
  const third = lock.exclusive(0, 20).then((h) => (order.push('third'), h));
  const apart = await lock.exclusive(100, 110);
  order.push('apart');
  first.release();
  (await second).release();
  (await third).release();
  apart.release();
  t.same(order, ['apart', 'second', 'third']);
});

t.test('a stream of writes does not starve an exclusive hold', async (t) => {
  const lock = new RangeLock();
  let running = 0;
  let stop = false;
  const writer = async () => {
    while (!stop) {
      await lock.write(0, 4096, async () => {
        running++;
        await settle();
        running--;
      });
    }
  };
  const writers = [writer(), writer(), writer()];
  await settle();
  const hold = await lock.exclusive(0, 512);
  t.equal(running, 0, 'granted with no overlapping write running');
  hold.release();
  stop = true;
  await Promise.all(writers);
});

t.test('a write that throws synchronously leaves the lock usable', async (t) => {
  const lock = new RangeLock();
  await t.rejects(
    lock.write(0, 1, () => {
      throw new Error('boom');
    }),
    /boom/,
  );
  const hold = await lock.exclusive(0, 1);
  hold.release();
  hold.release();
  t.pass('granted, and release is idempotent');
});

t.test('the layer: writes of the holder pass with its hold; others wait; a hold outside its range is refused', async (t) => {
  const device = new RangeLockedDevice(new MemoryBackend({ name: 'm', size: 1 << 20 }));
  const lock = device.rangeLock;
  const hold = await lock.exclusive(0, 4096);
  await device.write(0, [Buffer.alloc(512, 1)], { hold });
  t.pass('the holder writes its own range');
  let other = false;
  const p = device.write(512, [Buffer.alloc(512, 2)]).then(() => (other = true));
  const z = device.writeZeroes(1024, 512);
  const tr = device.trim(2048, 512);
  await settle();
  t.notOk(other, 'a write without the hold waits');
  await t.rejects(device.write(4096, [Buffer.alloc(512)], { hold }), { code: 'EINVAL' }, 'a write outside the hold is refused');
  hold.release();
  await Promise.all([p, z, tr]);
  const back = Buffer.alloc(1024);
  await device.read(0, back);
  t.equal(back[0], 1);
  t.equal(back[512], 2, 'the waiting write landed after the hold');
  t.notOk(await device.write(0, [Buffer.alloc(512)], { hold }).then(() => false, () => true), 'a released hold is an ordinary write again');
});

t.test('the switch gives every export of a device the same lock', async (t) => {
  const fabric = new FabricSwitch();
  fabric.addDevice(new MemoryBackend({ name: 'd', size: 1 << 20 }));
  fabric.addExport({ name: 'rw', device: 'd' });
  fabric.addExport({ name: 'ro', device: 'd', readOnly: true });
  const a = fabric.openChannel('rw', { id: 'nbd', protocol: 'nbd' });
  const b = fabric.openChannel('rw', { id: 'iscsi', protocol: 'iscsi' });
  const c = fabric.openChannel('ro', { id: 'nbd', protocol: 'nbd' });
  t.ok(a.rangeLock, 'a channel reaches the lock');
  t.equal(a.rangeLock, b.rangeLock, 'one lock for both front ends');
  t.equal(a.rangeLock, c.rangeLock, 'and for a read-only export of the same device');
  const hold = await a.rangeLock!.exclusive(0, 512);
  let done = false;
  const p = b.write(0, [Buffer.alloc(512)]).then(() => (done = true));
  await settle();
  t.notOk(done, "a write through another port's channel waits for the hold");
  hold.release();
  await p;
  await fabric.close();
});
