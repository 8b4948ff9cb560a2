/**
 * A member with a backend that cannot be reached at start-up starts anyway, and the failover
 * set that holds it starts degraded, as md assembles an array with a disk missing: a mirror
 * replica or a path of an explicit `type: multipath` whose nbdkit is down. When the server
 * comes up, the member joins it (a path back in service, a replica resynced).
 */
import t from 'tap';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { validateMemberConfig } from '../../failover/config/validate.js';
import { Member } from '../../member/member.js';
import { gatewayPorts as ports } from '../../gateway/ports.js';
import { tempDir, waitFor } from '../helpers/clients.js';
import { startNbdkit } from '../helpers/nbdkit-server.js';

const MiB = 1024 * 1024;
const SIZE = 8 * MiB;

async function disk(dir: string, name: string): Promise<string> {
  const file = join(dir, `${name}.img`);
  await writeFile(file, '');
  await truncate(file, SIZE);
  return file;
}

async function startMember(t: { teardown(fn: () => unknown): void }, doc: Record<string, unknown>, dataDir: string): Promise<Member> {
  const { config } = validateMemberConfig({ member: 'degraded', nbd: { listen: [] }, ...doc });
  const member = await Member.start(config, { dataDir, ports });
  t.teardown(() => member.stop({ drainMs: 0 }));
  return member;
}

const nbdTuning = { timeoutMs: 5000, connectTimeoutMs: 1000 };

t.test('a mirror whose replica is down at start serves degraded, then resyncs it', async (t) => {
  const dir = await tempDir(t);
  const files = [await disk(dir, 'r0'), await disk(dir, 'r1')];
  const servers = await Promise.all(files.map((f) => startNbdkit(t, { plugin: ['file', `file=${f}`] })));
  await servers[1]!.kill();
  const member = await startMember(
    t,
    {
      backends: servers.map((s, i) => ({ name: `r${i}`, type: 'nbd', address: s.address, ...nbdTuning })),
      devices: [{ name: 'm', type: 'mirror', replicas: ['r0', 'r1'], probeIntervalMs: 100, resync: { regionSize: '64k' } }],
      exports: [{ name: 'm', device: 'm' }],
    },
    join(dir, 'data'),
  );
  const set = member.sets.get('m')!;
  t.equal(set.state().state, 'degraded', 'the set starts degraded');
  t.same(
    set.state().members.map((m) => `${m.name}:${m.role}/${m.state}`),
    ['r0:primary/in-sync', 'r1:secondary/failed'],
  );
  const channel = member.fabric.openChannel('m', { id: 'test', protocol: 'nbd' });
  await channel.write(MiB, [Buffer.alloc(64 * 1024, 0x6b)]);
  await channel.flush();
  await servers[1]!.start();
  await waitFor(() => set.state().state === 'optimal', 'r1 joined and resynced', 30_000);
  const state = set.state();
  t.equal(state.kind === 'mirror' && state.bytesResynced, 64 * 1024, 'only what it missed was copied');
  t.ok((await readFile(files[0]!)).equals(await readFile(files[1]!)), 'replica files are byte-identical');
});

t.test('a multipath whose path is down at start serves on the other, and takes it back', async (t) => {
  const dir = await tempDir(t);
  const file = await disk(dir, 'shared');
  const servers = await Promise.all([false, true].map((tcp) => startNbdkit(t, { tcp, plugin: ['file', `file=${file}`] })));
  await servers[0]!.kill();
  const member = await startMember(
    t,
    {
      backends: servers.map((s, i) => ({ name: `p${i}`, type: 'nbd', address: s.address, ...nbdTuning })),
      devices: [{ name: 'mp', type: 'multipath', paths: ['p0', 'p1'], probeIntervalMs: 100, failback: 'immediate' }],
      exports: [{ name: 'mp', device: 'mp' }],
    },
    join(dir, 'data'),
  );
  const set = member.sets.get('mp')!;
  t.same(set.state().members.map((m) => `${m.name}:${m.state}`), ['p0:failed', 'p1:active'], 'the set starts degraded');
  t.equal(set.state().state, 'degraded');
  const channel = member.fabric.openChannel('mp', { id: 'test', protocol: 'nbd' });
  await channel.write(0, [Buffer.alloc(4096, 0x21)]);
  await servers[0]!.start();
  await waitFor(() => set.state().members[0]!.state === 'active', 'p0 joined', 30_000);
  t.same(set.state().members.map((m) => `${m.name}:${m.role}/${m.state}`), ['p0:primary/active', 'p1:secondary/standby'], 'preferred path back in front');
  const back = Buffer.alloc(4096);
  await channel.read(0, back);
  t.ok(back.every((b) => b === 0x21));
});

t.test('with every replica down there is nothing to start from: start-up fails', async (t) => {
  const dir = await tempDir(t);
  const files = [await disk(dir, 'r0'), await disk(dir, 'r1')];
  const servers = await Promise.all(files.map((f) => startNbdkit(t, { plugin: ['file', `file=${f}`] })));
  await Promise.all(servers.map((s) => s.kill()));
  const { config } = validateMemberConfig({
    member: 'degraded',
    nbd: { listen: [] },
    backends: servers.map((s, i) => ({ name: `r${i}`, type: 'nbd', address: s.address, ...nbdTuning })),
    devices: [{ name: 'm', type: 'mirror', replicas: ['r0', 'r1'] }],
    exports: [{ name: 'm', device: 'm' }],
  });
  await t.rejects(Member.start(config, { dataDir: join(dir, 'data'), ports }), { code: 'EIO' });
});
