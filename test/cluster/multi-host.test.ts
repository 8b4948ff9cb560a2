import t, { type Test } from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuilt, MemberProcess, CLI, ROOT } from '../helpers/blockgate-cli.js';
import { startBackground, tempDir } from '../helpers/clients.js';
import { fioVerify } from '../helpers/set-clients.js';
import { TestCluster } from '../helpers/cluster.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { nsSpawn } from '../helpers/netns.js';
import { createTopology, type Topology } from '../helpers/topology.js';

/**
 * Three member hosts in network namespaces, each with management networks A and B and a
 * front-end network, a three-node etcd (one node per member host, peers on A and B), a
 * shared disk (nbdkit in the client host, reached over the front end), and one failover set
 * whose service address moves to the Primary. One topology for every test in this file.
 */

ensureBuilt();
const MiB = 1024 * 1024;
const SET = 'disks';
const IQN = 'iqn.2026-11.dev.blockgate:cluster-disk';
const TTL_S = 2;

let topo: Topology;
let etcd: EtcdCluster;
let dir: string;
let config: string;
/** The same cluster with leases long enough to ride out an etcd leader election on a loaded machine. */
let longLeaseConfig: string;
const LONG_TTL_S = 6;

t.before(async () => {
  topo = await createTopology(t);
  dir = await tempDir(t, 'bgc-multi-', '/dev/shm');
  etcd = await startEtcdCluster(
    topo.members.map((m) => ({ name: `e-${m.name}`, host: m.v4.a, moreHosts: [m.v6b], clientPort: 2379, peerPort: 2380, netns: m.ns })),
  );
  // The shared disk: nbdkit's memory plugin, one RAM disk for every connection.
  const nbdkit = nsSpawn(topo.client.ns, 'nbdkit', ['-f', '-i', topo.client.v4.f, '-p', '10810', 'memory', '64M']);
  t.teardown(() => void nbdkit.kill('SIGKILL'));
  config = join(dir, 'cluster.json');
  longLeaseConfig = join(dir, 'cluster-long-lease.json');
  const clusterConfig = (ttlSeconds: number) =>
    JSON.stringify({
      backends: [{ name: 'disk', type: 'nbd', address: `${topo.client.v4.f}:10810`, timeoutMs: 5000, connectTimeoutMs: 2000 }],
      exports: [{ name: 'disk', device: 'disk' }],
      // Every member serves the set's target on its own portal group; non-Primaries redirect logins.
      iscsi: { targets: [{ name: IQN, luns: [{ lun: 0, export: 'disk' }], portalGroups: topo.members.map((m, i) => ({ id: i + 1, member: m.name, portals: [`${m.v4.f}:3260`] })) }] },
      cluster: {
        name: 'bgc-multi',
        members: topo.members.map((m) => ({ id: m.name })),
        arbitration: { type: 'etcd', endpoints: etcd.endpoints, ttlSeconds },
        sets: [
          {
            name: SET,
            members: topo.members.map((m) => m.name),
            exports: ['disk'],
            nbd: { listen: [`${topo.serviceAddress}:10809`] },
            serviceAddress: { address: `${topo.serviceAddress}/24`, interface: 'eth-f' },
          },
        ],
      },
    });
  writeFileSync(config, clusterConfig(TTL_S));
  writeFileSync(longLeaseConfig, clusterConfig(LONG_TTL_S));
});
t.teardown(async () => {
  await etcd?.stop();
});

function newCluster(t: Test, configFile = config): TestCluster {
  return new TestCluster(
    t,
    configFile,
    (id) => join(dir, `data-${id}`),
    (id) => ({ netns: topo.members.find((m) => m.name === id)!.ns }),
  );
}

async function startAll(t: Test, configFile = config): Promise<TestCluster> {
  const cluster = newCluster(t, configFile);
  t.teardown(() => {
    if (!t.passing()) t.comment(cluster.story());
  });
  for (const m of topo.members) cluster.start(m.name);
  for (const m of cluster.members.values()) await m.process.ready();
  await cluster.primary(SET);
  return cluster;
}

/** A blockgate in the client host whose nbd backend follows the service address. */
async function clientGateway(t: Test): Promise<string> {
  const socket = join(dir, `client-${Date.now()}.sock`);
  const cfg = join(dir, `client-${Date.now()}.json`);
  writeFileSync(
    cfg,
    JSON.stringify({
      member: 'client',
      backends: [
        {
          name: 'remote',
          type: 'nbd',
          paths: [`${topo.serviceAddress}:10809`],
          export: 'disk',
          marginal: { failures: 1000, windowMs: 1000 },
          failback: 'immediate',
          probeIntervalMs: 100,
          noPathRetryMs: 30_000,
          timeoutMs: 3000,
          connectTimeoutMs: 1000,
        },
      ],
      exports: [{ name: 'c', device: 'remote' }],
      nbd: { listen: [{ socket }] },
    }),
  );
  const child = nsSpawn(topo.client.ns, process.execPath, [CLI, 'serve', '--config', cfg, '--data-dir', join(dir, `data-client-${Date.now()}`)], {
    cwd: ROOT,
    env: { ...process.env, BLOCKGATE_LOG_FORMAT: 'json' },
  });
  const gw = new MemberProcess(child);
  t.teardown(() => gw.terminate('SIGKILL'));
  await gw.ready();
  return `nbd+unix:///c?socket=${socket}`;
}

/**
 * fio writes sizeMiB with crc32c in each block, then reads it all back. With rateIops it
 * takes at least sizeMiB*256/rateIops seconds, so it is surely still writing when a test
 * kills the Primary however fast the machine is.
 */
function fio(uri: string, sizeMiB: number, seed: number, rateIops?: number) {
  return fioVerify(uri, sizeMiB, seed, rateIops ? [`--rate_iops=${rateIops}`] : []);
}

/**
 * A libiscsi initiator in the client host: qemu-nbd reads and writes `iscsi://PORTAL/IQN/0`
 * through qemu's iscsi driver (libiscsi: it follows login redirects and, after a lost
 * connection, logs in again through the same portal and re-sends what got no answer),
 * and offers it to fio over NBD on a Unix socket.
 */
async function libiscsiClient(t: Test, portal: string): Promise<string> {
  const socket = join(dir, `qemu-${Date.now()}.sock`);
  const qemu = nsSpawn(topo.client.ns, 'qemu-nbd', ['-f', 'raw', '--cache=none', '--persistent', '--shared=8', '-k', socket, `iscsi://${portal}/${IQN}/0`]);
  const out = { text: '' };
  qemu.stdout!.on('data', (d: Buffer) => (out.text += d.toString()));
  qemu.stderr!.on('data', (d: Buffer) => (out.text += d.toString()));
  t.teardown(() => {
    if (!t.passing()) t.comment(`qemu-nbd: ${out.text.slice(-3000)}`);
    qemu.kill('SIGKILL');
  });
  for (let i = 0; i < 200 && !existsSync(socket); i++) {
    if (qemu.exitCode !== null) throw new Error(`qemu-nbd exited: ${out.text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return `nbd+unix:///?socket=${socket}`;
}

function fioReadBack(t: Test, run: ReturnType<typeof fio>, sizeMiB: number, code: number | null): void {
  const out = run.output();
  t.equal(code, 0, `fio wrote and verified without error${code === 0 ? '' : `: ${out.slice(-3000)}`}`);
  if (code !== 0) return;
  const report = JSON.parse(out.slice(out.indexOf('{'))) as { jobs: Array<{ error: number; read: { io_bytes: number } }> };
  t.equal(report.jobs[0]!.read.io_bytes, sizeMiB * MiB, 'every written block was read back and verified');
}

t.test('kill -9 the Primary under fio verify: the service address moves, the client resumes', async (t) => {
  const cluster = await startAll(t);
  const first = await cluster.primary(SET);
  const uri = await clientGateway(t);
  const run = fio(uri, 16, 11, 512);
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(run.child.exitCode, null, 'fio is writing when the Primary dies');
  await cluster.kill(first.id);
  const second = await cluster.primary(SET);
  t.not(second.id, first.id, `${second.id} took over from ${first.id}`);
  t.ok(second.token > first.token, `fencing token grew: ${first.token} → ${second.token}`);
  fioReadBack(t, run, 16, (await run.exited).code);
  t.equal(cluster.checkIntervals(SET), undefined, 'no two members served the set at the same time');
  await cluster.killAll();
});

t.test('kill -9 the Primary under a libiscsi client: redirected to the Primary, then to the next one', async (t) => {
  const cluster = await startAll(t);
  const first = await cluster.primary(SET);
  // The client names a member that is not the Primary: its login is redirected, and after
  // the kill libiscsi logs in there again and is sent to whoever took over.
  const entry = topo.members.find((m) => m.name !== first.id)!;
  const uri = await libiscsiClient(t, `${entry.v4.f}:3260`);
  const run = fio(uri, 8, 13, 256);
  await new Promise((r) => setTimeout(r, 2000));
  t.equal(run.child.exitCode, null, 'fio is writing when the Primary dies');
  await cluster.kill(first.id);
  const second = await cluster.primary(SET);
  t.not(second.id, first.id, `${second.id} took over from ${first.id}`);
  const { code } = await run.exited;
  fioReadBack(t, run, 8, code);
  const redirects = cluster.members.get(entry.name)!.process.lines.filter((l) => l.msg === 'login redirected').map((l) => String(l.reason));
  t.match(redirects[0], `${topo.members.find((m) => m.name === first.id)!.v4.f}:3260`, `${entry.name} redirected the first login to ${first.id}`);
  if (entry.name !== second.id) {
    t.match(redirects.at(-1), `${topo.members.find((m) => m.name === second.id)!.v4.f}:3260`, `and the login after the kill to ${second.id}`);
  }
  if (code === 0) {
    const job = (JSON.parse(run.output().slice(run.output().indexOf('{'))) as { jobs: Array<{ write: { lat_ns: { max: number } } }> }).jobs[0]!;
    const pauseMs = job.write.lat_ns.max / 1e6;
    t.comment(`client-visible pause (longest write): ${pauseMs.toFixed(0)} ms`);
    t.ok(pauseMs < 15_000, `the longest write took ${pauseMs.toFixed(0)} ms (bound 15 s)`);
  }
  t.equal(cluster.checkIntervals(SET), undefined, 'no two members served the set at the same time');
  await cluster.killAll();
});

t.test('cut networks A and B of the Primary: it fences itself, another takes over, it rejoins as standby', async (t) => {
  const cluster = await startAll(t);
  const first = await cluster.primary(SET);
  const uri = await clientGateway(t);
  const run = fio(uri, 16, 12);
  await new Promise((r) => setTimeout(r, 1000));
  await topo.cut(first.id, 'a');
  await topo.cut(first.id, 'b');
  const old = cluster.members.get(first.id)!.process;
  const fenced = await old.waitFor((l) => l.msg === 'stopped serving' && l.set === SET);
  t.match(fenced.why, /lease-expired|lease-lost/, `the isolated Primary stopped serving (${String(fenced.why)})`);
  const second = await cluster.primary(SET);
  t.not(second.id, first.id, `${second.id} took over`);
  fioReadBack(t, run, 16, (await run.exited).code);
  await topo.heal(first.id, 'a');
  await topo.heal(first.id, 'b');
  await new Promise((r) => setTimeout(r, 3 * TTL_S * 1000));
  t.same(await cluster.primary(SET), second, 'after healing, the old Primary did not take the role back');
  t.equal(cluster.checkIntervals(SET), undefined, 'no two members served the set at the same time');
  await cluster.killAll();
});

t.test('kill -9 of the etcd leader changes no role', async (t) => {
  // etcd elects a new leader in about a second here (500 ms election timeout), but on a loaded
  // 2-core machine a 2 s lease can lapse meanwhile; the claim is about leases that outlast an
  // etcd election, so this cluster renews 6 s leases.
  const cluster = await startAll(t, longLeaseConfig);
  const first = await cluster.primary(SET);
  const leader = await etcd.leader();
  await etcd.kill(leader);
  await new Promise((r) => setTimeout(r, 2 * LONG_TTL_S * 1000));
  for (const m of cluster.members.values()) t.notOk(m.process.lines.some((l) => l.msg === 'stopped serving'), `${m.id} did not lose or change a role`);
  t.same(await cluster.primary(SET), first, `${first.id} is still Primary with token ${first.token}`);
  await cluster.killAll();
});

t.test('rolling restart of all three members under fio verify: no I/O error, each rejoins as a standby', async (t) => {
  const cluster = await startAll(t);
  const uri = await clientGateway(t);
  // Time-based with a verify backlog: blocks are read back and checked while the members restart.
  const run = startBackground('fio', [
    '--name=rolling',
    '--ioengine=nbd',
    `--uri=${uri}`,
    '--rw=randwrite',
    '--bs=4k',
    '--iodepth=8',
    '--size=16M',
    '--time_based',
    '--runtime=40',
    '--verify=crc32c',
    '--verify_backlog=256',
    '--verify_fatal=1',
    '--verify_state_save=0',
    '--output-format=json',
  ]);
  await new Promise((r) => setTimeout(r, 1000));
  for (const m of topo.members) {
    // SIGTERM: a Primary resigns first, so the next one is elected without a lease wait.
    const { code } = await cluster.members.get(m.name)!.process.terminate('SIGTERM');
    t.equal(code, 0, `${m.name} stopped cleanly`);
    await cluster.start(m.name).process.ready();
    await cluster.primary(SET);
  }
  t.equal(run.child.exitCode, null, 'fio was still running through all three restarts');
  const { code } = await run.exited;
  const out = run.output();
  t.equal(code, 0, `fio saw no I/O error and every verified block matched${code === 0 ? '' : `: ${out.slice(-3000)}`}`);
  if (code === 0) {
    const job = (JSON.parse(out.slice(out.indexOf('{'))) as { jobs: Array<{ error: number; read: { io_bytes: number } }> }).jobs[0]!;
    t.equal(job.error, 0);
    t.ok(job.read.io_bytes > 0, `blocks were read back and verified during the run (${job.read.io_bytes} bytes)`);
  }
  t.equal(cluster.checkIntervals(SET), undefined, 'no two members served the set at the same time');
  await cluster.killAll();
});
