/**
 * Layers that split requests check each piece against its child (fabric/child-range.ts,
 * as nbdkit's backend_valid_range does at every layer boundary): a wrong split is refused
 * at the layer, naming it and the child, and no child sees any piece of that request.
 */
import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { ConcatDevice } from '../../fabric/layers/concat.js';
import { StripeDevice } from '../../fabric/layers/stripe.js';
import { setLogLevel } from '../../fabric/log.js';
import { FaultyDevice } from '../helpers/faulty.js';

setLogLevel('fatal');
const KiB = 1024;
const MiB = 1024 * KiB;

function legs(n: number, size: number): FaultyDevice[] {
  return Array.from({ length: n }, (_, i) => new FaultyDevice(new MemoryBackend({ name: `leg${i}`, size })));
}

/** A stripe whose mapping forgets the row: unit k of a child lands at k*unit of the whole. */
class MisMappedStripe extends StripeDevice {
  protected override locate(offset: number): void {
    super.locate(offset);
    this.at.childOffset = offset;
  }
}

/** A concat that forgets where each child starts (every piece lands at the child's offset 0 + parent offset). */
class MisMappedConcat extends ConcatDevice {
  protected override locate(offset: number): void {
    super.locate(offset);
    this.at.childOffset = offset;
  }
}

const touched = (children: FaultyDevice[]) => children.reduce((n, c) => n + c.ops.read + c.ops.write + c.ops.trim + c.ops.writeZeroes + c.ops.blockStatus + c.ops.cache, 0);

t.test('a stripe that maps past a child fails the request at the stripe, touching no child', async (t) => {
  const children = legs(2, MiB);
  const s = new MisMappedStripe('bad-stripe', children, 64 * KiB);
  // Offset 1.5 MiB maps to 1.5 MiB in a 1 MiB child; the request spans two units.
  const at = MiB + 512 * KiB;
  for (const [op, run] of [
    ['read', () => s.read(at, Buffer.alloc(128 * KiB))],
    ['write', () => s.write(at, [Buffer.alloc(128 * KiB)])],
    ['trim', () => s.trim(at, 128 * KiB)],
    ['write zeroes', () => s.writeZeroes(at, 128 * KiB)],
    ['block status', () => s.blockStatus(at, 64 * KiB)],
    ['cache', () => s.cache(at, 64 * KiB)],
  ] as const) {
    await t.rejects(run() as Promise<unknown>, { code: 'EIO', message: new RegExp(`bad-stripe: internal error: ${op} of \\d+ bytes at \\d+ handed to leg\\d`) }, `${op} refused`);
  }
  t.equal(touched(children), 0, 'no child saw any piece');
  // In range pieces still work with the same (wrong, but in-range) mapping.
  await s.write(0, [Buffer.alloc(64 * KiB, 1)]);
  t.equal(children[0]!.ops.write, 1);
});

t.test('a concat over a child that shrank refuses what no longer fits', async (t) => {
  const children = legs(2, MiB);
  const c = new MisMappedConcat('bad-concat', children);
  await t.rejects(c.write(MiB + 4 * KiB, [Buffer.alloc(4 * KiB)]), { code: 'EIO', message: /handed to leg1/ });
  t.equal(touched(children), 0);
});

t.test('the checks let correct splits through', async (t) => {
  const children = legs(3, MiB);
  const s = new StripeDevice('s', children, 64 * KiB);
  const data = Buffer.alloc(5 * 64 * KiB, 3);
  await s.write(32 * KiB, [data]);
  const back = Buffer.alloc(data.length);
  await s.read(32 * KiB, back);
  t.ok(back.equals(data));
  const concat = new ConcatDevice('c', legs(2, MiB));
  await concat.write(MiB - 4 * KiB, [Buffer.alloc(8 * KiB, 9)]);
  t.pass('a piece on each side of the boundary');
});
