import t from 'tap';
import { SetPolicy, type Candidate } from '../../failover/policy/set-policy.js';

/**
 * Whom a Primary names its Secondary: the first fit member in the set's preference order,
 * and in a hierarchical set (sets of sets, one per chassis) the first fit member of its own
 * set before any other set's.
 */
const member = (id: string, over: Partial<Candidate> = {}): Candidate => ({ id, live: true, eligible: true, generation: 1, role: undefined, secondary: undefined, ...over });
const MEMBERS = ['m1', 'm2', 'm3', 'm4'];
const CHASSIS = [
  ['m1', 'm2'],
  ['m3', 'm4'],
];

t.test('an n-way set: the first fit member in preference order', async (t) => {
  const p = new SetPolicy('s', MEMBERS, 'm3', 1000);
  t.equal(p.decide(member('m3'), [member('m1'), member('m2'), member('m4')], true).secondary, 'm1');
});

t.test("a hierarchical set: the Primary's own set first, then the others in order", async (t) => {
  const p = new SetPolicy('s', MEMBERS, 'm3', 1000, CHASSIS);
  const peers = [member('m1'), member('m2'), member('m4')];
  t.equal(p.decide(member('m3'), peers, true).secondary, 'm4', 'm3 (chassis B) names m4, its chassis peer, not m1');
  const q = new SetPolicy('s', MEMBERS, 'm3', 1000, CHASSIS);
  t.equal(q.decide(member('m3'), [member('m1'), member('m2'), member('m4', { live: false })], true).secondary, 'm1', 'with its chassis peer gone, the first of the other chassis');
  const r = new SetPolicy('s', MEMBERS, 'm1', 1000, CHASSIS);
  t.equal(r.decide(member('m1'), [member('m2', { eligible: false }), member('m3'), member('m4')], true).secondary, 'm3', 'an unfit chassis peer is passed over');
});
