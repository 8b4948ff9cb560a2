import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { CheckedDevice } from '../../fabric/checked.js';
import type { BlockDevice, Capabilities } from '../../fabric/device.js';
import { Layer } from '../../fabric/layer.js';
import { ReadOnlyLayer } from '../../fabric/layers/read-only.js';

/** A device whose capabilities are overridden, counting what reaches it. */
class Caps extends Layer {
  calls = 0;
  constructor(next: BlockDevice, private readonly caps: Partial<Capabilities>) {
    super(next);
  }
  override get capabilities(): Capabilities {
    return { ...this.next.capabilities, ...this.caps };
  }
  override write(...args: Parameters<BlockDevice['write']>) {
    this.calls++;
    return super.write(...args);
  }
}

const mem = () => new MemoryBackend({ name: 'm', size: 1 << 20, blockSizes: { minimum: 512, maximum: 64 * 1024 } });

t.test('range: EINVAL for reads and trims, ENOSPC for writes past the end', async (t) => {
  const d = new CheckedDevice(mem());
  await t.rejects(d.read((1 << 20) - 512, Buffer.alloc(1024)), { code: 'EINVAL' });
  await t.rejects(d.write((1 << 20) - 512, [Buffer.alloc(1024)]), { code: 'ENOSPC' });
  await t.rejects(d.trim(1 << 20, 512), { code: 'EINVAL' }, 'trim past the end: EINVAL, as nbdkit does');
  await t.rejects(d.writeZeroes((1 << 20) - 512, 1024), { code: 'ENOSPC' });
  await t.rejects(d.blockStatus(1 << 20, 512), { code: 'EINVAL' });
  await t.rejects(d.cache(1 << 20, 512), { code: 'EINVAL' });
  await t.rejects(d.read(-512, Buffer.alloc(512)), { code: 'EINVAL' });
  await t.rejects(d.read(2 ** 60, Buffer.alloc(512)), { code: 'EINVAL' }, 'beyond 2^53');
  await t.rejects(d.trim(0, 0), { code: 'EINVAL' }, 'zero length');
  await d.read((1 << 20) - 512, Buffer.alloc(512));
  await d.write((1 << 20) - 512, [Buffer.alloc(512)]);
  t.pass('the last block is in range');
});

t.test('alignment to the minimum block size', async (t) => {
  const d = new CheckedDevice(mem());
  await t.rejects(d.read(100, Buffer.alloc(512)), { code: 'EINVAL' });
  await t.rejects(d.write(0, [Buffer.alloc(100)]), { code: 'EINVAL' });
  await t.rejects(d.writeZeroes(512, 100), { code: 'EINVAL' });
  await d.write(0, [Buffer.alloc(100), Buffer.alloc(412)]);
  t.pass('slices adding up to a block are fine');
});

t.test('EOVERFLOW above the maximum payload', async (t) => {
  const d = new CheckedDevice(mem());
  await t.rejects(d.read(0, Buffer.alloc(128 * 1024)), { code: 'EOVERFLOW' });
  await t.rejects(d.write(0, [Buffer.alloc(64 * 1024), Buffer.alloc(512)]), { code: 'EOVERFLOW' });
  await d.writeZeroes(0, 128 * 1024);
  t.pass('zeroing carries no payload, so no maximum');
});

t.test('EPERM on read-only devices, before anything else', async (t) => {
  const d = new CheckedDevice(new ReadOnlyLayer(mem()));
  await t.rejects(d.write(0, [Buffer.alloc(512)]), { code: 'EPERM' });
  await t.rejects(d.trim(0, 512), { code: 'EPERM' });
  await t.rejects(d.writeZeroes(0, 512), { code: 'EPERM' });
  await t.rejects(d.write(1 << 30, [Buffer.alloc(3)]), { code: 'EPERM' }, 'even when out of range');
  await d.read(0, Buffer.alloc(512));
  await d.flush();
  t.pass('reads and flushes allowed');
});

t.test('ENOTSUP for operations the device lacks; EINVAL for FUA without fua', async (t) => {
  const inner = mem();
  const caps = new Caps(inner, { flush: false, fua: false, trim: false, writeZeroes: false, fastZero: false, cache: false });
  const d = new CheckedDevice(caps);
  await t.rejects(d.flush(), { code: 'ENOTSUP' });
  await t.rejects(d.trim(0, 512), { code: 'ENOTSUP' });
  await t.rejects(d.writeZeroes(0, 512), { code: 'ENOTSUP' });
  await t.rejects(d.cache(0, 512), { code: 'ENOTSUP' });
  await t.rejects(d.write(0, [Buffer.alloc(512)], { fua: true }), { code: 'EINVAL' });
  t.equal(caps.calls, 0, 'nothing reached the device');
  await d.write(0, [Buffer.alloc(512)]);
  t.equal(caps.calls, 1);

  const noFast = new CheckedDevice(new Caps(mem(), { fastZero: false }));
  await t.rejects(noFast.writeZeroes(0, 512, { fastOnly: true }), { code: 'ENOTSUP' });
  await noFast.writeZeroes(0, 512);
  await new CheckedDevice(mem()).writeZeroes(0, 512, { fastOnly: true, fua: true });
  t.pass('fast zero where supported');
});

t.test('valid requests pass through unchanged', async (t) => {
  const inner = mem();
  const d = new CheckedDevice(inner);
  const data = Buffer.alloc(1024, 7);
  await d.write(512, [data], { fua: true });
  const back = Buffer.alloc(1024);
  await d.read(512, back);
  t.same(back, data);
  t.same(await d.blockStatus(0, 65536), await inner.blockStatus(0, 65536));
  t.equal(d.name, 'm');
  t.equal(d.size, 1 << 20);
});

t.test('invalid requests and devices that throw instead of rejecting both give rejections, never a throw', async (t) => {
  class Throws extends Layer {
    override read(): Promise<void> {
      throw new Error('thrown, not rejected');
    }
  }
  const d = new CheckedDevice(new Throws(mem()));
  let threw = false;
  let pending: Promise<void> | undefined;
  let invalid: Promise<void> | undefined;
  try {
    pending = d.read(0, Buffer.alloc(512));
    invalid = d.read(1, Buffer.alloc(512));
  } catch {
    threw = true;
  }
  t.equal(threw, false);
  await t.rejects(pending!, /thrown, not rejected/);
  await t.rejects(invalid!, { code: 'EINVAL' });
});

t.test('the read-only layer answers from one object per set of capabilities below', async (t) => {
  const below = new Caps(mem(), { cache: true });
  let current = below.capabilities;
  Object.defineProperty(below, 'capabilities', { get: () => current });
  const ro = new ReadOnlyLayer(below);
  const first = ro.capabilities;
  t.match(first, { readOnly: true, trim: false, writeZeroes: false, fastZero: false, cache: true });
  t.equal(ro.capabilities, first, 'the same object while nothing changed below');
  current = { ...current, cache: false };
  t.equal(ro.capabilities.cache, false, 'a change below shows');
  t.not(ro.capabilities, first);
});
