import t from 'tap';
import { EtcdArbiter } from '../../failover/arbitration/etcd-arbiter.js';
import { NotPrimaryError } from '../../failover/arbitration/arbiter.js';
import { startCampaigner, type ArbiterSpec } from '../helpers/arbiter-child.js';
import { ensureBuilt } from '../helpers/blockgate-cli.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { freePort } from '../helpers/nbdkit-server.js';

ensureBuilt();
const TTL_S = 2;
const MARGIN_MS = 600;

let etcd: EtcdCluster;
t.before(async () => {
  const specs = [];
  for (const name of ['e1', 'e2', 'e3']) specs.push({ name, host: '127.0.0.1', clientPort: await freePort(), peerPort: await freePort() });
  etcd = await startEtcdCluster(specs);
});
t.teardown(() => etcd?.stop());

const arbiterOptions = () => ({ endpoints: etcd.endpoints, cluster: 'bgc-test', ttlSeconds: TTL_S, fenceMarginMs: MARGIN_MS });

t.test('one Primary per set; resign elects the waiting member at once with a larger token', async (t) => {
  const one = new EtcdArbiter(arbiterOptions());
  const two = new EtcdArbiter(arbiterOptions());
  t.teardown(async () => {
    await one.close();
    await two.close();
  });
  const l1 = await one.campaign('set-a', 'one', { meta: { api: '10.0.0.1:9810' } });
  t.match(await two.leader('set-a'), { member: 'one', token: l1.token, meta: { api: '10.0.0.1:9810' } });
  const waiting = two.campaign('set-a', 'two');
  let elected = false;
  void waiting.then(() => (elected = true));
  await new Promise((r) => setTimeout(r, 3 * TTL_S * 1000));
  t.notOk(elected, 'the second campaigner waits while the Primary keeps its lease alive');
  t.ok(l1.isValid(), 'the Primary stays valid across several lease periods');

  await one.guardedPut(l1, 'config/generation', '1');
  const resignedAt = Date.now();
  await l1.resign();
  const l2 = await waiting;
  t.ok(Date.now() - resignedAt < 1500, `handover after resign in ${Date.now() - resignedAt} ms (no TTL wait)`);
  t.ok(l2.token > l1.token, `fencing token grows: ${l1.token} → ${l2.token}`);
  t.equal(await one.lastToken('set-a'), l2.token);
  await t.rejects(one.guardedPut(l1, 'config/generation', 'stale'), NotPrimaryError, 'the old Primary cannot write');
  await two.guardedPut(l2, 'config/generation', '2');
  t.equal(await one.get('config/generation'), '2');
  // Several writes and a range deletion in one fenced step (a bounded history and its pointer).
  await two.guardedWrite(l2, { puts: [['h/01', 'a'], ['h/02', 'b'], ['h/03', 'c']] });
  await two.guardedWrite(l2, { puts: [['h/04', 'd'], ['h/current', 'd']], deleteRange: { from: 'h/', to: 'h/03' } });
  t.same(await one.list('h/'), [['h/03', 'c'], ['h/04', 'd'], ['h/current', 'd']], 'the range below h/03 is gone, the puts landed, in key order');
  await t.rejects(one.guardedWrite(l1, { puts: [['h/05', 'stale']], deleteRange: { from: 'h/', to: 'h/z' } }), NotPrimaryError, 'a stale holder writes and deletes nothing');
  t.equal((await one.list('h/')).length, 3);
});

t.test('kill -9 of the Primary: the next is elected after the lease TTL', async (t) => {
  const spec: ArbiterSpec = { kind: 'etcd', ...arbiterOptions() };
  const a = startCampaigner(t, spec, 'set-k', 'a');
  const first = await a.next('elected');
  const b = startCampaigner(t, spec, 'set-k', 'b');
  await b.next('campaigning');
  await new Promise((r) => setTimeout(r, 500));
  const killedAt = Date.now();
  await a.kill('SIGKILL');
  const second = await b.next('elected', 15_000);
  const took = Date.now() - killedAt;
  t.ok(took < 3 * TTL_S * 1000, `elected ${took} ms after kill -9 (TTL ${TTL_S} s)`);
  t.ok((second.token as number) > (first.token as number));
});

t.test('a paused Primary is fenced by its own clock before anyone else can be elected', async (t) => {
  const spec: ArbiterSpec = { kind: 'etcd', ...arbiterOptions() };
  const a = startCampaigner(t, spec, 'set-p', 'a');
  const first = await a.next('elected');
  a.send('valid');
  t.same((await a.next('valid')).valid, true);
  const b = startCampaigner(t, spec, 'set-p', 'b');
  a.child.kill('SIGSTOP');
  const second = await b.next('elected', 15_000);
  t.ok((second.token as number) > (first.token as number));
  // Queue a question while it sleeps: on waking, this stdin callback may run before any timer.
  a.send('valid');
  a.child.kill('SIGCONT');
  t.same((await a.next('valid')).valid, false, 'on waking, the old Primary already knows it may not serve');
  t.match(await a.next('ended'), { why: /lease-expired|lease-lost/ });
});

t.test('the Primary fences itself before its lease could expire when etcd goes silent', async (t) => {
  const one = new EtcdArbiter(arbiterOptions());
  t.teardown(() => one.close());
  const l = await one.campaign('set-s', 'one');
  await new Promise((r) => setTimeout(r, 800));
  // Freeze every etcd node: keep-alives go unanswered, nothing tells the client anything.
  const frozenAt = performance.now();
  for (const n of etcd.nodes) n.child?.kill('SIGSTOP');
  try {
    const why = await l.ended;
    const fencedAfter = performance.now() - frozenAt;
    t.equal(why, 'lease-expired');
    t.ok(fencedAfter < TTL_S * 1000 - MARGIN_MS + 100, `fenced ${fencedAfter.toFixed(0)} ms after the last renewal could have happened (TTL ${TTL_S * 1000} ms)`);
    t.notOk(l.isValid());
  } finally {
    for (const n of etcd.nodes) n.child?.kill('SIGCONT');
  }
});

t.test('kill -9 of the etcd leader does not fence the Primary', async (t) => {
  const one = new EtcdArbiter(arbiterOptions());
  t.teardown(() => one.close());
  const l = await one.campaign('set-e', 'one');
  let ended: string | undefined;
  void l.ended.then((why) => (ended = why));
  const leader = await etcd.leader();
  await etcd.kill(leader);
  await new Promise((r) => setTimeout(r, 4 * TTL_S * 1000));
  t.equal(ended, undefined, `still Primary ${4 * TTL_S} s after etcd leader ${leader} was killed`);
  t.ok(l.isValid());
  await one.guardedPut(l, 'after-leader-loss', 'ok');
  t.equal(await one.get('after-leader-loss'), 'ok');
});
