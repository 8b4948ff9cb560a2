import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileArbiter } from '../../failover/arbitration/file-arbiter.js';
import { NotPrimaryError } from '../../failover/arbitration/arbiter.js';
import { startCampaigner } from '../helpers/arbiter-child.js';
import { ensureBuilt } from '../helpers/blockgate-cli.js';

ensureBuilt();
const dir = mkdtempSync(join(tmpdir(), 'bgc-arbiter-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('one holder per set; kill -9 of the holder elects the next at once with a larger token', async (t) => {
  const spec = { kind: 'file' as const, dir };
  const a = startCampaigner(t, spec, 'set-k', 'a');
  const first = await a.next('elected');
  const b = startCampaigner(t, spec, 'set-k', 'b');
  const c = startCampaigner(t, spec, 'set-k', 'c');
  // b and c wait while a holds the lock.
  await Promise.all([b.next('campaigning'), c.next('campaigning')]);
  await new Promise((r) => setTimeout(r, 300));
  t.notOk([...b.events, ...c.events].some((e) => e.event === 'elected'), 'nobody else is elected while a lives');
  const arbiter = new FileArbiter({ dir });
  t.match(await arbiter.leader('set-k'), { member: 'a', token: first.token });

  const killedAt = Date.now();
  await a.kill('SIGKILL');
  const second = await Promise.race([b.next('elected'), c.next('elected')]);
  t.ok(Date.now() - killedAt < 3000, `next holder within 3 s of kill -9 (${Date.now() - killedAt} ms)`);
  t.ok((second.token as number) > (first.token as number), 'the fencing token grew');
  await new Promise((r) => setTimeout(r, 200));
  t.equal([...b.events, ...c.events].filter((e) => e.event === 'elected').length, 1, 'exactly one of the waiting members was elected');
  t.equal(await arbiter.lastToken('set-k'), second.token);
});

t.test('resign hands over; a resigned leadership can no longer write', async (t) => {
  const one = new FileArbiter({ dir });
  const two = new FileArbiter({ dir });
  const l1 = await one.campaign('set-r', 'one');
  await one.guardedPut(l1, 'config/current', 'gen-1');
  const campaign2 = two.campaign('set-r', 'two');
  await l1.resign();
  t.equal(await l1.ended, 'resigned');
  const l2 = await campaign2;
  t.ok(l2.token > l1.token);
  await t.rejects(one.guardedPut(l1, 'config/current', 'stale'), NotPrimaryError, 'a stale holder is refused');
  await two.guardedPut(l2, 'config/current', 'gen-2');
  t.equal(await one.get('config/current'), 'gen-2');
  // Several writes and a range deletion in one fenced step (a bounded history and its pointer).
  await two.guardedWrite(l2, { puts: [['h/01', 'a'], ['h/02', 'b'], ['h/03', 'c']] });
  await two.guardedWrite(l2, { puts: [['h/04', 'd'], ['h/current', 'd']], deleteRange: { from: 'h/', to: 'h/03' } });
  t.same(await one.list('h/'), [['h/03', 'c'], ['h/04', 'd'], ['h/current', 'd']], 'the range below h/03 is gone, the puts landed, in key order');
  await t.rejects(one.guardedWrite(l1, { puts: [['h/05', 'stale']], deleteRange: { from: 'h/', to: 'h/z' } }), NotPrimaryError, 'a stale holder writes and deletes nothing');
  t.equal((await one.list('h/')).length, 3);
  t.match(await one.leader('set-r'), { member: 'two', token: l2.token });
  await two.close();
  t.equal(await l2.ended, 'closed');
  t.equal(await one.leader('set-r'), undefined, 'no leader once the holder closed');
});

t.test('sets are independent; an aborted campaign gives up', async (t) => {
  const one = new FileArbiter({ dir });
  const two = new FileArbiter({ dir });
  const x = await one.campaign('set-x', 'one');
  const y = await two.campaign('set-y', 'two');
  t.ok(x.isValid() && y.isValid(), 'one member can be Primary of x while another is Primary of y');
  const ac = new AbortController();
  const waiting = two.campaign('set-x', 'two', { signal: ac.signal });
  ac.abort();
  await t.rejects(waiting, { name: 'AbortError' });
  await t.rejects(one.campaign('../etc', 'one'), RangeError, 'a set name is checked');
  await one.close();
  await two.close();
});
