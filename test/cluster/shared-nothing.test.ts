import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuilt, ROOT, type LogLine } from '../helpers/blockgate-cli.js';
import { runTool } from '../helpers/clients.js';
import { TestCluster } from '../helpers/cluster.js';
import { freePort } from '../helpers/nbdkit-server.js';
import { clientGateway, fioVerify } from '../helpers/set-clients.js';

/**
 * A shared-nothing set on one host (file-lock arbiter, three members, each with its own
 * replica file, exported to the Primary on its replication port): kill -9 of a member under
 * fio verify costs one replica and its return a delta resync; kill -9 of the Primary under
 * fio verify hands over to a member that repairs and serves the same data; a member whose
 * replica missed writes is refused the Primary role; and the replicas refuse an unfenced
 * client and a deposed Primary's token.
 */

ensureBuilt();
const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
const REGION = 256 * 1024;
const ids = ['m1', 'm2', 'm3'] as const;
/** Where the dead Primary's late write goes: written by the fill only. */
const LATE_AT = 15 * MiB;

/**
 * Connections to members' replicas as the Primary of term `term` opened them (blockgate's NBD
 * client, the same fencing token), kept open; go() makes each write 0xee at LATE_AT, then
 * tries a new connection with the same token, and prints what each got.
 */
function oldPrimaryConnections(replicas: ReadonlyMap<string, number>, term: number) {
  const dist = (p: string) => JSON.stringify(join(ROOT, 'dist', p));
  const script = `
    import { NbdClient } from ${dist('fabric/backends/nbd-client/client.js')};
    import { parseNbdAddress } from ${dist('fabric/backends/nbd-client/address.js')};
    const replicas = ${JSON.stringify([...replicas])};
    const open = (port) => NbdClient.open({ name: 'old', address: parseNbdAddress('127.0.0.1:' + port), exportName: 'disk', fenceToken: { term: ${term}, generation: 1 } });
    const clients = await Promise.all(replicas.map(([, port]) => open(port)));
    console.log('connected');
    process.stdin.once('data', async () => {
      for (const [i, c] of clients.entries()) {
        try { await c.write(${LATE_AT}, [Buffer.alloc(4096, 0xee)]); console.log(replicas[i][0] + ' write: accepted'); }
        catch (err) { console.log(replicas[i][0] + ' write: refused: ' + err.message); }
      }
      try { await open(replicas[0][1]); console.log('reconnect: accepted'); } catch (err) { console.log('reconnect: refused: ' + err.message); }
      process.exit(0);
    });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    connected: new Promise<void>((resolve, reject) => {
      child.stdout.on('data', () => out.includes('connected') && resolve());
      void exited.then(() => reject(new Error(`the old Primary's connections failed: ${out}`)));
    }),
    go: () => child.stdin.write('go\n'),
    done: exited.then(() => out),
  };
}

t.test('shared-nothing set: member loss, delta resync, Primary loss, stale member refused, fencing', async (t) => {
  const dir = mkdtempSync(join('/dev/shm', 'sn-'));
  const port = await freePort();
  const replication = new Map<string, number>();
  for (const id of ids) replication.set(id, await freePort());
  const replica = (id: string) => join(dir, `replica-${id}.img`);
  const config = join(dir, 'cluster.json');
  writeFileSync(
    config,
    JSON.stringify({
      devices: [
        {
          name: 'disk',
          type: 'replicated',
          path: join(dir, 'unused.img'),
          paths: Object.fromEntries(ids.map((id) => [id, replica(id)])),
          size: SIZE,
          create: true,
          resync: { rateMiBps: 0, regionSize: REGION },
          // Few extents: the log holds only where writes went last, which is what a takeover repairs.
          activityLog: { extentSize: '1MiB', extents: 4 },
          probeIntervalMs: 100,
        },
      ],
      exports: [{ name: 'disk', device: 'disk' }],
      cluster: {
        name: 'sn',
        members: ids.map((id) => ({ id, replication: `127.0.0.1:${replication.get(id)}` })),
        arbitration: { type: 'file', dir: join(dir, 'arbiter') },
        sets: [{ name: 'disks', members: [...ids], exports: ['disk'], nbd: { listen: [`127.0.0.1:${port}`] } }],
      },
    }),
  );
  const cluster = new TestCluster(t, config, (id) => join(dir, `data-${id}`));
  // Once the members are gone: one still campaigning would write into the arbiter directory.
  t.teardown(async () => {
    await cluster.killAll();
    rmSync(dir, { recursive: true, force: true });
  });
  const story = () => cluster.story();
  await cluster.start('m1').process.ready();
  const first = await cluster.primary('disks');
  t.equal(first.id, 'm1');
  await Promise.all(['m2', 'm3'].map((id) => cluster.start(id).process.ready()));
  const primaryLog = (id: string) => cluster.members.get(id)!.process;
  /** The next time (from now on) `id` logs that the replica on `replicaOf` is in sync. */
  const inSync = (id: string, replicaOf: string) => {
    const p = primaryLog(id);
    const from = p.lines.length;
    return p.waitFor((l: LogLine) => l.msg === `replica disk@${replicaOf} is now in-sync` && p.lines.indexOf(l) >= from);
  };
  // The members started after the Primary join by a (hole-skipping) initial sync.
  const joined = (id: string) => primaryLog('m1').waitFor((l: LogLine) => l.msg === `replica disk@${id} is now in-sync`);
  await Promise.all([joined('m2'), joined('m3')]);

  // Every block allocated on every replica: a whole-device resync would copy all of it.
  const nbd = `nbd://127.0.0.1:${port}/disk`;
  const fill = await runTool('qemu-io', ['-f', 'raw', '-c', `write -P 0x5a 0 ${SIZE}`, nbd]);
  t.equal(fill.code, 0, `filled the disk through the set: ${fill.stderr}`);

  // 1. kill -9 a non-Primary member under fio verify: writes continue, degraded.
  const uri = await clientGateway(t, dir, port);
  const fio = fioVerify(uri, 4, 1, ['--offset=0']);
  await new Promise((r) => setTimeout(r, 1000));
  t.equal(fio.child.exitCode, null, 'fio is still writing when m3 dies');
  await cluster.kill('m3');
  const degraded = await primaryLog('m1').waitFor((l) => l.msg === 'replica disk@m3 is now failed');
  t.ok(degraded, 'the Primary took m3’s replica out');
  const { code } = await fio.exited;
  t.equal(code, 0, `fio wrote and verified through the loss of a member${code === 0 ? '' : `: ${fio.output().slice(-2000)}\n${story()}`}`);
  // A write outside fio's area, while m3 is away.
  const more = await runTool('qemu-io', ['-f', 'raw', '-c', `write -P 0x77 ${8 * MiB} ${MiB}`, nbd]);
  t.equal(more.code, 0);

  // 2. m3 returns: only the regions written meanwhile are copied.
  const returned = inSync('m1', 'm3');
  cluster.start('m3');
  const back = await returned;
  const copied = Number(/resync complete: (\d+) bytes copied/.exec(String(back.reason))?.[1]);
  t.ok(copied >= MiB && copied <= 5 * MiB, `delta resync copied ${copied} bytes: at least the 1 MiB written at 8 MiB, at most fio's 4 MiB + 1 MiB, not the ${SIZE}-byte device`);
  const same = () => ids.every((id) => readFileSync(replica(id)).equals(readFileSync(replica('m1'))));
  t.ok(same(), 'the three replica files are byte-identical after the resync');

  // 3. kill -9 the Primary under fio verify: the next one serves the same data.
  const survivors = ids.filter((id) => id !== 'm1');
  const late = oldPrimaryConnections(new Map(survivors.map((id) => [id, replication.get(id)!])), first.token);
  await late.connected;
  const fio2 = fioVerify(uri, 4, 2, ['--offset=0']);
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(fio2.child.exitCode, null, 'fio is still writing when the Primary dies');
  await cluster.kill('m1');
  const second = await cluster.primary('disks');
  t.not(second.id, 'm1');
  t.ok(second.token > first.token, `the fencing token grew: ${first.token} → ${second.token}`);
  const r2 = await fio2.exited;
  t.equal(r2.code, 0, `fio verified every block across the takeover${r2.code === 0 ? '' : `: ${fio2.output().slice(-2000)}\n${story()}`}`);
  const repaired = await primaryLog(second.id).waitFor((l) => l.msg === 'the mirror was not stopped cleanly: resyncing what writes in flight may have left different');
  t.ok(
    (repaired.extents as number) > 0 && (repaired.extents as number) <= 8,
    `the new Primary repaired the ${String(repaired.extents)} activity-log extents the dead one had writes in (not all 16 of the device)`,
  );
  const attached = await primaryLog(second.id).waitFor((l) => l.msg === 'mirror across the members attached');
  t.equal((attached.replicas as Record<string, string>)['disk@m1'], 'failed', 'the new Primary mirrors without the dead one');

  // 4. The replicas refuse a client with no token, and the dead Primary's late writes.
  const unfenced = await runTool('nbdinfo', [`nbd://127.0.0.1:${replication.get(second.id)}/disk`], { allowFailure: true });
  t.not(unfenced.code, 0, 'a replica refuses a client that presents no fencing token');
  t.ok(
    primaryLog(second.id).lines.some((l) => l.msg === 'client refused' && l.port === `${second.id}/replication` && l.token === 'none'),
    'the replica logged the refusal of the unfenced client',
  );
  // The dead Primary's connections to the replicas, opened while it served: their writes,
  // delivered after the takeover (a paused Primary waking), are refused by every replica.
  late.go();
  const lateOut = await late.done;
  for (const id of survivors) {
    t.match(lateOut, new RegExp(`^${id} write: refused: .*fencing token ${first.token}\\.1 is older`, 'm'), `${id}'s replica refused the late write on the old connection`);
    t.equal(readFileSync(replica(id))[LATE_AT], 0x5a, `${id}'s replica still holds the data the late write was to overwrite`);
  }
  t.match(lateOut, /^reconnect: refused: .*fencing token/m, `a new connection with the dead Primary's token is refused at NBD_OPT_GO: ${lateOut}`);

  // 5. m1's replica missed writes: alone, it is refused the Primary role; an in-sync member takes it.
  const more2 = await runTool('qemu-io', ['-f', 'raw', '-c', `write -P 0x99 ${12 * MiB} ${MiB}`, nbd]);
  t.equal(more2.code, 0);
  for (const id of survivors) await cluster.kill(id);
  cluster.start('m1');
  const refused = await primaryLog('m1').waitFor((l) => l.msg === 'Primary role refused');
  t.match(String(refused.reason), /cannot be reached/, `m1 refuses to serve its stale replica: ${String(refused.reason)}`);
  const served = await runTool('qemu-io', ['-f', 'raw', '-c', 'read 0 4096', nbd], { timeoutMs: 10_000, allowFailure: true });
  t.not(served.code, 0, 'nothing is served from the stale replica');
  cluster.start(second.id);
  const caughtUp = primaryLog(second.id).waitFor((l) => l.msg === 'replica disk@m1 is now in-sync');
  const third = await cluster.primary('disks').catch((err: unknown) => {
    throw new Error(`${String(err)}\n${story()}`);
  });
  t.equal(third.id, second.id, `${second.id}, whose replica is in sync, is Primary again`);
  const resynced = await caughtUp;
  const delta = Number(/resync complete: (\d+) bytes copied/.exec(String(resynced.reason))?.[1]);
  t.ok(delta >= MiB && delta < SIZE, `m1's replica resynced by delta: ${delta} bytes (fio's area, the 1 MiB at 12 MiB, the repaired extents), not ${SIZE}`);
  const check = await runTool('qemu-io', ['-f', 'raw', '-c', `read -P 0x99 ${12 * MiB} ${MiB}`, '-c', `read -P 0x77 ${8 * MiB} ${MiB}`, nbd]);
  t.equal(check.code, 0, `the newest writes read back: ${check.stdout}${check.stderr}`);
  t.notMatch(check.stdout, /Pattern verification failed/);
  t.ok(readFileSync(replica('m1')).equals(readFileSync(replica(second.id))), 'm1’s replica caught up by delta resync');
  t.equal(cluster.checkIntervals('disks'), undefined, 'no two members served the set at the same time');
});
