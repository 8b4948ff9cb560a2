/**
 * A mirror whose replicas are real nbdkit processes (file plugin, Unix sockets) reached
 * through the 'nbd' kind, exported by blockgate's NBD server and driven by fio. Replicas are
 * killed with SIGKILL under load and restarted on the same file.
 */
import t from 'tap';
import { readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlockDevice } from '../../fabric/device.js';
import type { MirrorDevice } from '../../fabric/layers/mirror/mirror.js';
import type { MirrorSetState } from '../../failover/set.js';
import { buildWithSets, setNamed } from '../helpers/failover.js';
import { startBackground, tempDir, waitFor } from '../helpers/clients.js';
import { startNbdkit, type NbdkitServer } from '../helpers/nbdkit-server.js';
import { startNbdServer } from '../helpers/nbd.js';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
const REGION = 64 * 1024;

interface Tap {
  teardown(fn: () => unknown): void;
}

async function replicaFiles(t: Tap, dir: string, names: string[]): Promise<{ files: string[]; servers: NbdkitServer[] }> {
  const files = names.map((n) => join(dir, `${n}.img`));
  for (const f of files) {
    await writeFile(f, '');
    await truncate(f, SIZE);
  }
  const servers = await Promise.all(files.map((file) => startNbdkit(t, { plugin: ['file', `file=${file}`] })));
  return { files, servers };
}

function specs(servers: NbdkitServer[], names: string[], mirror: Record<string, unknown>): Array<Record<string, unknown>> {
  return [
    ...names.map((name, i) => ({ name, type: 'nbd', address: servers[i]!.address, timeoutMs: 10_000 })),
    // Fresh sparse files: identical, and these tests are about failures, not the initial sync.
    { name: 'm', type: 'mirror', probeIntervalMs: 200, assumeClean: true, ...mirror },
  ];
}

const stateOf = new WeakMap<MirrorDevice, () => MirrorSetState>();

async function buildMirror(t: Tap, list: ReadonlyArray<Record<string, unknown>>, dataDir: string): Promise<MirrorDevice> {
  const { graph, sets } = await buildWithSets(t, list, dataDir);
  const m = graph.get('m') as MirrorDevice;
  const set = setNamed(sets, 'm');
  stateOf.set(m, () => set.state() as MirrorSetState);
  return m;
}

function fioArgs(uri: string, extra: string[]): string[] {
  return [
    '--name=mirror',
    '--ioengine=nbd',
    `--uri=${uri}`,
    '--bs=4k',
    '--iodepth=8',
    '--verify=crc32c',
    '--do_verify=1',
    '--verify_fatal=1',
    '--verify_state_save=0', // no local-*-verify.state file left in the cwd
    '--output-format=terse',
    ...extra,
  ];
}

/** The mirror's failover set as the API shows it, with `replicas` for its members. */
function detailOf(m: MirrorDevice) {
  const state = stateOf.get(m)!();
  return { ...state, replicas: state.members };
}

async function sameFiles(a: string, b: string): Promise<boolean> {
  return (await readFile(a)).equals(await readFile(b));
}

t.test('kill -9 of a replica under fio: no error, verify passes; its return is a delta resync', async (t) => {
  const dir = await tempDir(t);
  const names = ['r0', 'r1'];
  const { files, servers } = await replicaFiles(t, dir, names);
  const m = await buildMirror(t, specs(servers, names, { replicas: names, resync: { regionSize: REGION } }), join(dir, 'data'));
  const nbd = await startNbdServer([{ name: 'm', device: m as BlockDevice }]);
  t.teardown(() => nbd.stop());

  // Writes confined to the first 8 MiB at 4 MiB/s: about two seconds of load, then verify.
  const fio = startBackground('fio', fioArgs(nbd.unixUri('m'), ['--rw=randwrite', '--size=8m', '--rate=4m']));
  t.teardown(() => fio.stop());
  await new Promise((r) => setTimeout(r, 700));
  await servers[1]!.kill('SIGKILL');
  const result = await fio.exited;
  t.equal(result.code, 0, 'fio finished without error and its verify passed');
  if (result.code !== 0) t.comment(fio.output().slice(-3000));
  t.equal(m.status().state, 'degraded', 'the mirror went on degraded');
  t.same(detailOf(m).replicas.map((r) => `${r.name}:${r.role}/${r.state}`), ['r0:primary/in-sync', 'r1:secondary/failed']);
  const dirty = detailOf(m).replicas[1]!.dirtyBytes;
  t.ok(dirty > 0 && dirty <= 8 * MiB, `regions written while r1 was away are dirty (${dirty} bytes)`);

  await servers[1]!.start();
  await waitFor(() => m.status().state === 'optimal', 'r1 back in sync', 30_000);
  const copied = detailOf(m).bytesResynced;
  t.equal(copied, dirty, `the delta resync copied the dirty regions only (${copied} bytes)`);
  t.ok(copied < SIZE / 4, 'far less than the device');
  await m.flush();
  t.ok(await sameFiles(files[0]!, files[1]!), 'replica files are byte-identical');
});

t.test('a hot spare replaces a killed replica and is rebuilt under load', async (t) => {
  const dir = await tempDir(t);
  const names = ['r0', 'r1', 'spare'];
  const { files, servers } = await replicaFiles(t, dir, names);
  const m = await buildMirror(t, specs(servers, names, { replicas: ['r0', 'r1'], spares: ['spare'], resync: { regionSize: '1M', rateMiBps: 64 } }), join(dir, 'data'));
  const nbd = await startNbdServer([{ name: 'm', device: m as BlockDevice }]);
  t.teardown(() => nbd.stop());

  const fio = startBackground('fio', fioArgs(nbd.unixUri('m'), ['--rw=randrw', '--size=16m', '--rate=4m,4m']));
  t.teardown(() => fio.stop());
  await new Promise((r) => setTimeout(r, 500));
  await servers[0]!.kill('SIGKILL');
  await waitFor(() => detailOf(m).replicas.find((r) => r.name === 'spare')!.role === 'secondary', 'spare promotion');
  t.pass('the spare was promoted while fio ran');
  const result = await fio.exited;
  t.equal(result.code, 0, 'fio finished without error and its verify passed');
  if (result.code !== 0) t.comment(fio.output().slice(-3000));
  await waitFor(() => m.status().state === 'optimal', 'rebuild', 60_000);
  t.same(detailOf(m).replicas.map((r) => `${r.name}:${r.role}/${r.state}`), ['r0:alternate/failed', 'r1:primary/in-sync', 'spare:secondary/in-sync']);
  const { bytesResynced, resync } = detailOf(m);
  t.ok(bytesResynced > 0 && bytesResynced <= 16 * MiB, `the spare got what fio wrote (${bytesResynced} bytes copied)…`);
  t.equal(resync.length, 0);
  t.ok((await stat(files[2]!)).blocks * 512 <= 20 * MiB, '…and the holes of the 64 MiB device stayed holes on it');
  await m.flush();
  t.ok(await sameFiles(files[1]!, files[2]!), 'the spare is byte-identical to the surviving replica');
  await servers[0]!.start();
  await waitFor(() => detailOf(m).replicas[0]!.state === 'standby', 'the old replica returns as a spare');
});

t.test('a restart of the mirror during a throttled resync resumes from the bitmap', async (t) => {
  const dir = await tempDir(t);
  const dataDir = join(dir, 'data');
  const names = ['r0', 'r1'];
  const { files, servers } = await replicaFiles(t, dir, names);
  const list = specs(servers, names, { replicas: names, resync: { regionSize: REGION, rateMiBps: 2 } });
  const m1 = await buildMirror(t, list, dataDir);
  await servers[1]!.kill('SIGKILL');
  const payload = Buffer.alloc(MiB, 0x5a);
  for (let i = 0; i < 8; i++) await m1.write(i * 4 * MiB, [payload]); // 8 MiB dirty, spread out
  t.equal(detailOf(m1).replicas[1]!.dirtyBytes, 8 * MiB);
  await servers[1]!.start();
  await waitFor(() => (detailOf(m1).resync[0]?.percent ?? 0) > 10, 'resync under way', 30_000);
  await m1.close();
  const before = detailOf(m1).bytesResynced;
  t.ok(before > 0 && before < 8 * MiB, `part copied before the restart (${before})`);

  const m2 = await buildMirror(t, list.map((s) => (s.name === 'm' ? { ...s, resync: { regionSize: REGION, rateMiBps: 0 } } : s)), dataDir);
  t.equal(detailOf(m2).replicas[1]!.state, 'resyncing', 'the resync resumed at start');
  await waitFor(() => m2.status().state === 'optimal', 'resync done', 30_000);
  const after = detailOf(m2).bytesResynced;
  t.ok(after < 8 * MiB && before + after <= 8 * MiB + 2 * REGION, `only the rest was copied (${after})`);
  await m2.flush();
  t.ok(await sameFiles(files[0]!, files[1]!), 'replica files are byte-identical');
});
