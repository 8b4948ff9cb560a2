import t, { type Test } from 'tap';
import { truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuilt, startMember, type MemberProcess } from '../helpers/blockgate-cli.js';
import { nbdsh, tempDir } from '../helpers/clients.js';
import { freePort } from '../helpers/nbdkit-server.js';
import { startRelay, type Relay } from '../helpers/tcp-relay.js';

/**
 * The hazard of issue 8 §3, with real processes: a path that hangs rather than dies delivers a
 * write after the write was re-issued on another path and acknowledged, and after a newer write
 * to the same block was acknowledged. A blockgate member serves two disks; a second blockgate's
 * multipath `nbd` backends reach each over two paths, the active one through a relay process
 * that is SIGSTOPped. Without fencing the late write lands on top of the newer data (the
 * control, which shows the hazard is real here); with fencing the server refuses it.
 */

ensureBuilt();
const BLOCK = 4096;

t.test('a hung path wakes after its write was re-issued and overwritten', async (t) => {
  const dir = await tempDir(t, 'bg-fencing-', '/dev/shm');
  const names = ['plain', 'fenced'] as const;
  for (const name of names) {
    writeFileSync(join(dir, `${name}.img`), '');
    truncateSync(join(dir, `${name}.img`), 16 << 20);
  }
  const serverPort = await freePort();
  const serverConfig = join(dir, 'server.json');
  writeFileSync(
    serverConfig,
    JSON.stringify({
      member: 'backend',
      backends: names.map((name) => ({ name, type: 'file', path: join(dir, `${name}.img`) })),
      exports: names.map((name) => ({ name, device: name })),
      nbd: { listen: [`127.0.0.1:${serverPort}`] },
    }),
  );
  const server = startMember(t, ['--config', serverConfig, '--data-dir', join(dir, 'data-backend')]);
  const [relays] = await Promise.all([Promise.all(names.map(() => startRelay(t, serverPort))), server.ready()]);
  const relayOf = new Map<string, Relay>(names.map((n, i) => [n, relays[i]!]));

  const socket = join(dir, 'client.sock');
  const clientConfig = join(dir, 'client.json');
  writeFileSync(
    clientConfig,
    JSON.stringify({
      member: 'client',
      backends: names.map((name) => ({
        name,
        type: 'nbd',
        // The active path goes through the relay; the standby one straight to the server.
        paths: [`127.0.0.1:${relayOf.get(name)!.port}`, `127.0.0.1:${serverPort}`],
        export: name,
        policy: 'active-passive',
        failback: 'manual',
        timeoutMs: 2000,
        // Generous: a path that failed to connect at start would leave the relay out of the story.
        connectTimeoutMs: 5000,
        // No probe round during the scenario: a probe on the active path would be the one to time
        // out (if the write is slow to come, the write never waits in the relay), and the server's
        // answer to a probe, waiting in the hung relay, would be written first to the client that
        // has left, resetting the relay's client side before it read the held write and its FIN.
        probeIntervalMs: 600_000,
        fencing: name === 'fenced',
      })),
      exports: names.map((name) => ({ name, device: name })),
      nbd: { listen: [{ socket }] },
    }),
  );
  const client = startMember(t, ['--config', clientConfig, '--data-dir', join(dir, 'data-client')]);
  await client.ready();

  /** The scenario on one disk; returns the byte the block holds in the end. */
  async function hangAndWake(t: Test, name: string, clientLog: MemberProcess): Promise<number> {
    const relay = relayOf.get(name)!;
    // The active path hangs: the first write waits in the relay, times out, is re-issued on
    // the other path and acknowledged; then a newer write to the same block is acknowledged.
    relay.pause();
    const writing = nbdsh(`nbd+unix:///${name}?socket=${socket}`, `h.pwrite(b'\\xaa' * ${BLOCK}, 0)\nh.pwrite(b'\\xbb' * ${BLOCK}, 0)\nprint('acked')`);
    await relay.holding(BLOCK);
    t.pass('the first write waits in the hung path');
    const written = await writing;
    t.match(written.stdout, /acked/, 'both writes acknowledged while the first path hangs');
    t.ok(
      clientLog.lines.some((l) => l.msg === `path ${name}.path0 failed`),
      'the hung path was taken out and the write re-issued on the other one',
    );
    // The path wakes: the relay delivers the old write on the old connection, which the
    // server answers before it closes.
    relay.resume();
    await relay.closed(1);
    const read = await nbdsh(`nbd://127.0.0.1:${serverPort}/${name}`, `print(h.pread(${BLOCK}, 0)[0])`);
    return Number(read.stdout.trim());
  }

  await t.test('without fencing, the hung path overwrites the newer data (the hazard)', async (t) => {
    t.equal(await hangAndWake(t, 'plain', client), 0xaa, 'the block holds the older write, delivered late');
  });

  await t.test('with fencing, the server refuses the late write: the block holds the newer data', async (t) => {
    t.equal(await hangAndWake(t, 'fenced', client), 0xbb, 'the block holds the newer write');
    t.ok(
      server.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('refusing a stale client') && l.export === 'fenced'),
      'the server logged the refusal',
    );
  });
});
