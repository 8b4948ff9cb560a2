import t from 'tap';
import { StagedHeaders } from '../../fabric/staged-headers.js';

/** Stage `count` 4-byte records numbered from `first`, as the NBD writers stage headers. */
function stage(staged: StagedHeaders, first: number, count: number): void {
  for (let n = first; n < first + count; n++) {
    const at = staged.reserve(4); // first: reserve may start a new slab
    staged.slab.writeUInt32BE(n, at);
  }
}

const numbers = (b: Buffer): number[] => Array.from({ length: b.length / 4 }, (_, i) => b.readUInt32BE(i * 4));

t.test('a run of staged headers leaves as one buffer, in order, only when flushed', async (t) => {
  const sent: Buffer[] = [];
  const staged = new StagedHeaders((b) => sent.push(b), 64);
  t.equal(staged.pending, 0);
  staged.flush();
  t.equal(sent.length, 0, 'nothing staged, nothing sent');
  stage(staged, 1, 5);
  t.equal(sent.length, 0, 'staging sends nothing');
  t.equal(staged.pending, 20);
  staged.flush();
  t.same(sent.map(numbers), [[1, 2, 3, 4, 5]], 'one buffer holding the run');
  stage(staged, 6, 2);
  staged.flush();
  t.same(sent.map(numbers), [[1, 2, 3, 4, 5], [6, 7]], 'the next run follows in a buffer of its own');
});

t.test('bytes handed to the sink are never written again, whatever follows', async (t) => {
  const sent: Buffer[] = [];
  const staged = new StagedHeaders((b) => sent.push(b), 16);
  // 4 records fill a 16-byte slab; the 5th must start a new one, not reuse the old.
  stage(staged, 1, 3);
  staged.flush();
  stage(staged, 4, 6);
  staged.flush();
  t.same(sent.map(numbers).flat(), [1, 2, 3, 4, 5, 6, 7, 8, 9], 'every record once, in order');
  t.same(numbers(sent[0]!), [1, 2, 3], 'the first run still reads as it was sent');
  t.ok(sent.every((b) => b.length > 0), 'no empty writes');
  // A record larger than a slab gets a slab of its own size.
  const at = staged.reserve(40);
  t.equal(staged.slab.length - at >= 40, true, 'room for an oversized record');
});

t.test('discard drops what was staged and not flushed', async (t) => {
  const sent: Buffer[] = [];
  const staged = new StagedHeaders((b) => sent.push(b));
  stage(staged, 1, 2);
  staged.discard();
  staged.flush();
  t.equal(sent.length, 0);
  stage(staged, 3, 1);
  staged.flush();
  t.same(sent.map(numbers), [[3]]);
});
