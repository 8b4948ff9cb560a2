import t from 'tap';
import { truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuilt, startMember } from '../helpers/blockgate-cli.js';
import { nbdsh, tempDir } from '../helpers/clients.js';
import { TestCluster } from '../helpers/cluster.js';
import { freePort } from '../helpers/nbdkit-server.js';
import { startRelay, type Relay } from '../helpers/tcp-relay.js';

/**
 * A deposed Primary's late write, with real processes: two members (file-lock arbiter) serve
 * a set whose disks are exports of a third blockgate process. The Primary's write to its
 * backend sits in a hung link (a SIGSTOPped relay that only the first member's connection
 * goes through) when the Primary is killed; the next Primary re-issues the client's write
 * and a newer one; then the link wakes and delivers the dead Primary's write. On the disk
 * whose backend has `fencing: true` the backend refuses it (the new Primary presented its
 * arbitration token as it took over); on the other, the control, it overwrites the newer data.
 */

ensureBuilt();
const BLOCK = 4096;
const names = ['plain', 'fenced'] as const;

t.test('the backend refuses a dead Primary’s write delivered after the takeover', async (t) => {
  const dir = await tempDir(t, 'bg-fence-primary-', '/dev/shm');
  for (const name of names) {
    writeFileSync(join(dir, `${name}.img`), '');
    truncateSync(join(dir, `${name}.img`), 16 << 20);
  }
  const backendPort = await freePort();
  writeFileSync(
    join(dir, 'backend.json'),
    JSON.stringify({
      member: 'backend',
      backends: names.map((name) => ({ name, type: 'file', path: join(dir, `${name}.img`) })),
      exports: names.map((name) => ({ name, device: name })),
      nbd: { listen: [`127.0.0.1:${backendPort}`] },
    }),
  );
  const backend = startMember(t, ['--config', join(dir, 'backend.json'), '--data-dir', join(dir, 'data-backend')]);
  const [relays] = await Promise.all([Promise.all(names.map(() => startRelay(t, backendPort, 1))), backend.ready()]);
  const relayOf = new Map<string, Relay>(names.map((n, i) => [n, relays[i]!]));

  const setPort = await freePort();
  const config = join(dir, 'cluster.json');
  writeFileSync(
    config,
    JSON.stringify({
      backends: names.map((name) => ({
        name,
        type: 'nbd',
        // Only the first member to start gets through the relay; the other uses the direct path.
        paths: [`127.0.0.1:${relayOf.get(name)!.port}`, `127.0.0.1:${backendPort}`],
        export: name,
        failback: 'manual',
        timeoutMs: 60_000,
        // Generous: m1's path through the relay must connect at start, however loaded the machine.
        connectTimeoutMs: 5000,
        probeIntervalMs: 200,
        fencing: name === 'fenced',
      })),
      exports: names.map((name) => ({ name, device: name })),
      cluster: {
        name: 'bg-fence-primary',
        members: [{ id: 'm1' }, { id: 'm2' }],
        arbitration: { type: 'file', dir: join(dir, 'arbiter') },
        sets: [{ name: 'disks', members: ['m1', 'm2'], exports: [...names], nbd: { listen: [`127.0.0.1:${setPort}`] } }],
      },
    }),
  );
  const cluster = new TestCluster(t, config, (id) => join(dir, `data-${id}`));
  await cluster.start('m1').process.ready();
  const first = await cluster.primary('disks');
  t.equal(first.id, 'm1');
  await cluster.start('m2').process.ready();

  // The hosts' side: a blockgate whose nbd backends follow the set's Primary (they reconnect
  // and re-issue what got no reply; nbdsh alone would not).
  const socket = join(dir, 'client.sock');
  writeFileSync(
    join(dir, 'client.json'),
    JSON.stringify({
      member: 'client',
      backends: names.map((name) => ({
        name,
        type: 'nbd',
        paths: [`127.0.0.1:${setPort}`],
        export: name,
        marginal: { failures: 1000, windowMs: 1000 },
        probeIntervalMs: 100,
        noPathRetryMs: 30_000,
        connectTimeoutMs: 1000,
      })),
      exports: names.map((name) => ({ name, device: name })),
      nbd: { listen: [{ socket }] },
    }),
  );
  await startMember(t, ['--config', join(dir, 'client.json'), '--data-dir', join(dir, 'data-client')]).ready();

  // The Primary's link to the backend hangs; the clients' writes reach the Primary and wait there.
  for (const r of relays) r.pause();
  const writes = names.map((name) =>
    nbdsh(`nbd+unix:///${name}?socket=${socket}`, `h.pwrite(b'\\xaa' * ${BLOCK}, 0)\nh.pwrite(b'\\xbb' * ${BLOCK}, 0)\nprint('acked')`, { timeoutMs: 60_000 }),
  );
  await Promise.all(relays.map((r) => r.holding(BLOCK)));

  // The Primary dies with its write in the link. The next one takes over; the clients
  // reconnect to it and re-issue the write, then write newer data, both acknowledged.
  await cluster.kill('m1');
  const second = await cluster.primary('disks');
  t.equal(second.id, 'm2');
  t.ok(second.token > first.token, `the fencing token grew: ${first.token} → ${second.token}`);
  for (const w of await Promise.all(writes)) t.match(w.stdout, /acked/, 'both writes acknowledged by the new Primary');

  // The link wakes and delivers the dead Primary's write.
  for (const r of relays) r.resume();
  await Promise.all(relays.map((r) => r.closed(1)));
  const held = async (name: string) => Number((await nbdsh(`nbd://127.0.0.1:${backendPort}/${name}`, `print(h.pread(${BLOCK}, 0)[0])`)).stdout.trim());
  t.equal(await held('plain'), 0xaa, 'control (no fencing): the dead Primary’s late write overwrote the newer data');
  t.equal(await held('fenced'), 0xbb, 'with fencing the backend refused it: the block holds the newer data');
  t.ok(
    backend.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('refusing a stale client') && l.export === 'fenced'),
    'the backend logged the refusal',
  );
  t.equal(cluster.checkIntervals('disks'), undefined, 'no two members served the set at the same time');
});
