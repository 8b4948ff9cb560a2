import { once } from 'node:events';
import t from 'tap';
import { AluaState } from '../../gateway/scsi/alua.js';
import { cdb10, dataIn, makeTarget, nexus, senseOf, type Fixture } from '../helpers/scsi-fixtures.js';

const GOOD = 0;
// Two groups of two ports each; host 1 reaches both through ports 1 (group 1) and 3 (group 2).
const groups = [
  { id: 1, ports: [1, 2], preferred: true },
  { id: 2, ports: [3, 4] },
];
const P1 = nexus('iqn.2026-11.test:host1', '400001370000', 1, 1);
const P3 = nexus('iqn.2026-11.test:host1', '400001370010', 3, 2);

function rtpg(f: Fixture, n = P1, extended = false) {
  return f.run([0xa3, 0x0a | (extended ? 0x20 : 0), 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], { nexus: n }).then(dataIn);
}

function states(d: Buffer): Record<number, number> {
  const out: Record<number, number> = {};
  const end = 4 + d.readUInt32BE(0);
  for (let at = (d[4]! & 0x70) === 0x10 ? 8 : 4; at < end; at += 8 + 4 * d[at + 7]!) out[d.readUInt16BE(at + 2)] = d[at]! & 0x0f;
  return out;
}

/** Consumes pending unit attentions (TEST UNIT READY until it reports something else). */
async function settle(f: Fixture, ...ns: (typeof P1)[]) {
  for (const n of ns) {
    for (let i = 0; i < 10; i++) if (senseOf(await f.run([0, 0, 0, 0, 0, 0], { nexus: n }))?.[0] !== 6) break;
  }
}

t.test('REPORT TARGET PORT GROUPS layout, same on every path', async (t) => {
  const f = makeTarget({ alua: { groups, policy: 'active-passive', transitionMs: 5 } });
  const d = await rtpg(f);
  t.equal(d.readUInt32BE(0), 2 * (8 + 8), 'return data length');
  t.same([...d.subarray(4, 12)], [0x80, 0x8f, 0, 1, 0, 0, 0, 2], 'group 1: PREF, active/optimized, supported states, 2 ports');
  t.same([...d.subarray(12, 20)], [0, 0, 0, 1, 0, 0, 0, 2], 'port ids 1, 2');
  t.same([...d.subarray(20, 28)], [0x02, 0x8f, 0, 2, 0, 0, 0, 2], 'group 2: standby');
  t.same(await rtpg(f, P3), d, 'same answer through the standby port');
  const ext = await rtpg(f, P1, true);
  t.equal(ext[4], 0x10, 'extended header format');
  t.equal(ext.readUInt32BE(0), ext.length - 4);
  t.same(ext.subarray(8), d.subarray(4));
  const short = dataIn(await f.run([0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0]));
  t.equal(short.length, 6, 'allocation length');
});

t.test('standby port refuses media access but answers what SPC-4 allows', async (t) => {
  const f = makeTarget({ alua: { groups, policy: 'active-passive', transitionMs: 5 } });
  t.same(senseOf(await f.run(cdb10(0x28, 0, 1), { nexus: P3 })), [2, 0x04, 0x0b], 'READ: NOT READY, standby');
  t.same(senseOf(await f.run([0, 0, 0, 0, 0, 0], { nexus: P3 })), [2, 0x04, 0x0b], 'TEST UNIT READY too');
  for (const [name, cdb] of [
    ['INQUIRY', [0x12, 0, 0, 0, 36, 0]],
    ['REPORT LUNS', [0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]],
    ['MODE SENSE', [0x1a, 0, 0x3f, 0, 255, 0]],
    ['PERSISTENT RESERVE IN', [0x5e, 0, 0, 0, 0, 0, 0, 1, 0, 0]],
    ['REPORT TPGS', [0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]],
  ] as const) {
    t.equal((await f.run([...cdb], { nexus: P3 })).status, GOOD, `${name} allowed in standby`);
  }
  const rs = dataIn(await f.run([0x03, 0, 0, 0, 18, 0], { nexus: P3 }));
  t.same([rs[2]! & 0x0f, rs[12], rs[13]], [2, 0x04, 0x0b], 'REQUEST SENSE reports the standby state');
  t.equal((await f.run(cdb10(0x28, 0, 1), { nexus: P1 })).status, GOOD, 'active port reads');
});

t.test('explicit failover with SET TARGET PORT GROUPS', async (t) => {
  const f = makeTarget({ alua: { groups, policy: 'active-passive', transitionMs: 5 } });
  const other = nexus('iqn.2026-11.test:host2', '400001370001', 2, 1);
  for (const n of [P1, P3, other]) await f.run([0x12, 0, 0, 0, 36, 0], { nexus: n });
  const list = Buffer.from([0, 0, 0, 0, 0x00, 0, 0, 2]);
  const r = await f.run([0xa4, 0x0a, 0, 0, 0, 0, 0, 0, 0, list.length, 0, 0], { nexus: P3, data: list });
  t.equal(r.status, GOOD);
  t.same(states(await rtpg(f, P3)), { 1: 2, 2: 0 }, 'group 2 active/optimized, group 1 standby');
  const d = await rtpg(f, P3);
  t.equal(d[9], 1, 'group 1 status: altered by SET TARGET PORT GROUPS');
  t.same(senseOf(await f.run([0, 0, 0, 0, 0, 0], { nexus: other })), [6, 0x2a, 0x06], 'others: ASYMMETRIC ACCESS STATE CHANGED');
  t.same(senseOf(await f.run(cdb10(0x28, 0, 1), { nexus: other })), [2, 0x04, 0x0b], 'and their port is standby now');
  t.equal((await f.run(cdb10(0x28, 0, 1), { nexus: P3 })).status, GOOD, 'the sender is not told and reads through group 2');

  t.same(senseOf(await f.run([0xa4, 0x0a, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], { nexus: P3, data: Buffer.from([0, 0, 0, 0, 0x0f, 0, 0, 1]) })), [5, 0x26, 0], 'transitioning cannot be asked for');
  t.same(senseOf(await f.run([0xa4, 0x0a, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], { nexus: P3, data: Buffer.from([0, 0, 0, 0, 0, 0, 0, 9]) })), [5, 0x26, 0], 'unknown group');
});

t.test('transitions pass through transitioning and queue unit attentions', async (t) => {
  const alua = new AluaState({ groups, policy: 'active-passive', transitionMs: 30 });
  const seen: string[] = [];
  alua.on('change', (id, state) => seen.push(`${id}:${state}`));
  const f = makeTarget({ alua: { groups, policy: 'active-passive', transitionMs: 30 } });
  for (const n of [P1, P3]) await f.run([0x12, 0, 0, 0, 36, 0], { nexus: n });
  const changed = once(f.alua, 'change');
  const done = f.alua.takeOutOfService(1);
  await changed;
  t.same(senseOf(await f.run([0x12, 0, 0, 0, 36, 0], { nexus: P1 })), undefined, 'INQUIRY still fine');
  const during = await f.run(cdb10(0x28, 0, 1), { nexus: P3 });
  t.same(senseOf(during), [6, 0x2a, 0x06], 'first the unit attention');
  const during2 = await f.run(cdb10(0x28, 0, 1), { nexus: P3 });
  t.same(senseOf(during2), [2, 0x04, 0x0a], 'then NOT READY, transitioning');
  await done;
  await settle(f, P1, P3);
  t.same(states(await rtpg(f, P3)), { 1: 3, 2: 0 }, 'group 1 unavailable, group 2 took over');
  t.same(senseOf(await f.run(cdb10(0x28, 0, 1), { nexus: P1 })), [2, 0x04, 0x0c], 'unavailable port');
  t.equal((await f.run(cdb10(0x28, 0, 1), { nexus: P3 })).status, GOOD, 'other path works');
  t.same(senseOf(await f.run([0xa4, 0x0a, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], { nexus: P3, data: Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]) })), [5, 0x26, 0], 'an out-of-service group cannot be made active');

  await f.alua.bringIntoService(1);
  await settle(f, P3);
  t.same(states(await rtpg(f, P3)), { 1: 2, 2: 0 }, 'back as standby under active-passive');

  // The standalone state machine reports every step.
  await alua.setStates(new Map([[2, 'active/optimized']]));
  t.same(seen.sort(), ['1:standby', '1:transitioning', '2:active/optimized', '2:transitioning']);
});

t.test('active-active keeps every group optimized', async (t) => {
  const f = makeTarget({ alua: { groups, policy: 'active-active', transitionMs: 5 } });
  t.same(states(await rtpg(f)), { 1: 0, 2: 0 });
  await f.run([0x12, 0, 0, 0, 36, 0]);
  await f.alua.takeOutOfService(2);
  await settle(f, P1);
  t.same(states(await rtpg(f)), { 1: 0, 2: 3 }, 'only the lost group changes');
  await f.alua.bringIntoService(2);
  await settle(f, P1);
  t.same(states(await rtpg(f)), { 1: 0, 2: 0 });
  const list = Buffer.from([0, 0, 0, 0, 0x01, 0, 0, 2]);
  t.equal((await f.run([0xa4, 0x0a, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], { data: list })).status, GOOD);
  t.same(states(await rtpg(f)), { 1: 0, 2: 1 }, 'non-optimized on request');
  t.equal((await f.run(cdb10(0x28, 0, 1), { nexus: P3 })).status, GOOD, 'non-optimized still serves');
});
