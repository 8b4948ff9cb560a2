/**
 * Which receive path an NBD connection uses, and when it starts pinning memory: a socket
 * that is only connected, or still negotiating, holds no receive arena; an established one
 * reads into pooled arenas through Node's socket internals (fabric/own-read-buffers.ts) —
 * and if a Node upgrade removes those internals, this test fails rather than the server
 * quietly falling back to slower 'data' events.
 */
import t from 'tap';
import net from 'node:net';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { BufferPool } from '../../fabric/buffers.js';
import { setLogLevel } from '../../fabric/log.js';
import { ownReadBuffersSupported } from '../../fabric/own-read-buffers.js';
import { receivePathCounts } from '../../fabric/socket-receiver.js';
import { RawNbdClient, startNbdServer } from '../helpers/nbd.js';

setLogLevel('warn');
const IDLE = 500;
/** NBD_CMD_WRITE (NBD protocol spec, "Request types"). */
const NBD_CMD_WRITE = 1;

t.test('this Node has the socket internals the receive arenas need', async (t) => {
  t.ok(ownReadBuffersSupported(), 'net.Socket has kBuffer/kBufferCb/kBufferGen');
});

t.test(`${IDLE} idle sockets pin no receive arena; the first request does`, async (t) => {
  const pool = new BufferPool();
  // All the sockets come from 127.0.0.1: lift the per-client limit (256 by default) above them.
  const nbd = await startNbdServer([{ name: 'disk', device: new MemoryBackend({ name: 'idle-disk', size: 1 << 20 }) }], {
    pool,
    connectionLimits: { maxConnections: 2 * IDLE, maxConnectionsPerClient: 2 * IDLE },
  });
  t.teardown(() => nbd.stop());
  const before = process.memoryUsage().arrayBuffers;
  const sockets: net.Socket[] = [];
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  // Each reads the 18-byte greeting, so the server has accepted and started it.
  await Promise.all(
    Array.from({ length: IDLE }, () => new Promise<void>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port: nbd.port });
      sockets.push(s);
      s.once('error', reject);
      // A socket the server closes before its greeting fails the test at once instead of hanging it.
      s.once('close', () => reject(new Error('the server closed an idle socket before its greeting')));
      let got = 0;
      s.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= 18) resolve();
      });
    })),
  );
  // Half of them also send their client flags and stall in option haggling.
  for (const s of sockets.slice(0, IDLE / 2)) s.write(Buffer.from([0, 0, 0, 3]));
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(nbd.server.connectionCount, IDLE, `${IDLE} connections open`);
  t.equal(pool.stats.acquired, 0, 'no receive arena acquired by connected or negotiating sockets');
  const perSocket = (process.memoryUsage().arrayBuffers - before) / IDLE;
  t.comment(`array buffers per idle socket: ${Math.round(perSocket)} bytes`);
  t.ok(perSocket < 16 * 1024, 'an idle socket holds well under 64 KiB of buffers');

  const arenasBefore = receivePathCounts.arenas;
  const c = await RawNbdClient.open({ port: nbd.port });
  t.teardown(() => c.destroy());
  await c.go('disk');
  c.request(NBD_CMD_WRITE, { cookie: 1n, offset: 0, payload: Buffer.alloc(4096, 7) });
  t.equal((await c.readSimple()).error, 0);
  t.equal(receivePathCounts.arenas, arenasBefore + 1, 'the established connection reads into receive arenas');
  t.ok(pool.stats.acquired >= 1, 'its arena came from the pool once it was established');
});

t.test("the forced fallback reads 'data' events and serves the same", async (t) => {
  const pool = new BufferPool();
  const nbd = await startNbdServer([{ name: 'disk', device: new MemoryBackend({ name: 'fallback-disk', size: 1 << 20 }) }], { pool, receive: 'data-events' });
  t.teardown(() => nbd.stop());
  const fallbackBefore = receivePathCounts['data-events'];
  const c = await RawNbdClient.open({ port: nbd.port });
  t.teardown(() => c.destroy());
  await c.go('disk');
  c.request(NBD_CMD_WRITE, { cookie: 1n, offset: 0, payload: Buffer.alloc(4096, 7) });
  t.equal((await c.readSimple()).error, 0);
  t.equal(pool.stats.acquired, 0, 'no arena');
  t.equal(receivePathCounts['data-events'], fallbackBefore + 1, "the connection counts as reading 'data' events");
});
