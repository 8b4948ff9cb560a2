/**
 * Clients that hold connections without using them: a handshake that stalls is dropped
 * (10 s by default, as qemu-nbd), and a listener takes only so many connections, in total
 * and per client address. Each refusal is counted.
 */
import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS } from '../../gateway/nbd/server.js';
import { RawNbdClient, startNbdServer, stillServes } from '../helpers/nbd.js';

const MiB = 1 << 20;

t.test('a client that stalls in the handshake is dropped after the timeout', async (t) => {
  t.equal(DEFAULT_HANDSHAKE_TIMEOUT_MS, 10_000, 'default: 10 s, as qemu-nbd');
  const nbd = await startNbdServer([{ name: 'disk', device: new MemoryBackend({ name: 'lim-t', size: MiB }) }], { handshakeTimeoutMs: 300 });
  t.teardown(() => nbd.stop());
  const silent = await RawNbdClient.connect({ port: nbd.port });
  const halfway = await RawNbdClient.open({ port: nbd.port });
  const started = Date.now();
  await Promise.all([silent.closed, halfway.closed]);
  t.ok(Date.now() - started < 5000, 'both dropped soon after 300 ms');
  t.equal(nbd.server.refusals.count('nbd', 'timeout'), 2, 'counted');
  const served = await RawNbdClient.open({ port: nbd.port });
  await served.go('disk');
  await new Promise((r) => setTimeout(r, 600));
  t.equal(served.socket.destroyed, false, 'a client in transmission is not subject to it');
  served.destroy();
});

t.test('connections per client address and per listener are limited', async (t) => {
  const nbd = await startNbdServer([{ name: 'disk', device: new MemoryBackend({ name: 'lim-c', size: MiB }) }], {
    connectionLimits: { maxConnections: 3, maxConnectionsPerClient: 2 },
  });
  t.teardown(() => nbd.stop());
  const open: RawNbdClient[] = [];
  t.teardown(() => open.forEach((c) => c.destroy()));
  const from = async (localAddress: string) => {
    const c = await RawNbdClient.connect({ port: nbd.port, localAddress });
    open.push(c);
    return c;
  };
  await from('127.0.0.1');
  await from('127.0.0.1');
  const third = await from('127.0.0.1');
  await third.closed;
  t.pass('a third connection from 127.0.0.1 is closed at once');
  t.equal(nbd.server.refusals.count('nbd', 'client-limit'), 1);
  const other = await from('127.0.0.2');
  const fourth = await from('127.0.0.4');
  await fourth.closed;
  t.equal(nbd.server.refusals.count('nbd', 'connection-limit'), 1, 'the listener is full at 3, whoever asks');
  t.ok(await stillServes({ socketPath: nbd.socketPath }), 'the Unix listener has its own count');
  other.destroy();
  await until(() => nbd.server.connectionCount === 2);
  t.ok(await stillServes({ port: nbd.port, localAddress: '127.0.0.5' }), 'a freed place is taken again');
});

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 5));
}
