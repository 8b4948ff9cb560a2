import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { Layer } from '../../fabric/layer.js';
import { NBD_CMD_READ, NBD_CMD_WRITE, NBD_REQUEST_MAGIC } from '../helpers/nbd-spec.js';
import { RawNbdClient, startNbdServer, stillServes } from '../helpers/nbd.js';

const MiB = 1 << 20;

/** Holds every read until released, so requests can be caught in flight. */
class HeldReads extends Layer {
  private waiting: Array<() => void> = [];
  held = 0;
  override async read(offset: number, target: Buffer): Promise<void> {
    this.held++;
    await new Promise<void>((resolve) => this.waiting.push(resolve));
    return super.read(offset, target);
  }
  releaseAll(): void {
    for (const w of this.waiting.splice(0)) w();
  }
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 5));
}

t.test('500 idle connections, then a normal client is served', async (t) => {
  const nbd = await startNbdServer([{ name: 'disk', device: new MemoryBackend({ name: 'rb-idle', size: MiB }) }]);
  t.teardown(() => nbd.stop());
  const idle: RawNbdClient[] = [];
  t.teardown(() => idle.forEach((c) => c.destroy()));
  for (let i = 0; i < 500; i++) {
    // A mix of states: fresh (greeting unread), mid-handshake and in transmission, from
    // four client addresses (one address may hold at most 256 connections).
    const from = { port: nbd.port, localAddress: `127.0.0.${1 + (i % 4)}` };
    const c = i % 3 === 0 ? await RawNbdClient.connect(from) : await RawNbdClient.open(from);
    if (i % 3 === 2) await c.go('disk');
    idle.push(c);
  }
  await until(() => nbd.server.connectionCount === 500);
  t.equal(nbd.server.connectionCount, 500);
  t.ok(await stillServes({ port: nbd.port }), 'a 501st client reads');
  t.ok(await stillServes({ socketPath: nbd.socketPath }), 'and one on the Unix socket');
  idle.forEach((c) => c.destroy());
  await until(() => nbd.server.connectionCount === 0);
  t.pass('all idle connections were cleaned up');
});

t.test('clients vanishing mid-request do not disturb others', async (t) => {
  const dev = new MemoryBackend({ name: 'rb-mid', size: 4 * MiB });
  const nbd = await startNbdServer([{ name: 'disk', device: dev }]);
  t.teardown(() => nbd.stop());
  const tcp = { port: nbd.port };

  const midPayload = await RawNbdClient.open(tcp);
  await midPayload.go('disk');
  midPayload.request(NBD_CMD_WRITE, { cookie: 1n, offset: 0, length: MiB });
  midPayload.write(Buffer.alloc(100_000, 0xaa));
  midPayload.destroy();

  const midHeader = await RawNbdClient.open(tcp);
  await midHeader.go('disk');
  const header = Buffer.alloc(28);
  header.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
  midHeader.write(header.subarray(0, 13));
  midHeader.socket.end();
  await midHeader.closed;

  const garbage = await RawNbdClient.open(tcp);
  await garbage.go('disk');
  garbage.write(Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) & 0xff)));
  await garbage.closed;

  // A reader that disconnects while its reply is being produced.
  const leaver = await RawNbdClient.open(tcp);
  await leaver.go('disk');
  for (let i = 0; i < 32; i++) leaver.request(NBD_CMD_READ, { cookie: BigInt(i), offset: 0, length: MiB });
  leaver.destroy();

  await until(() => nbd.server.connectionCount === 0);
  t.ok(await stillServes(tcp, 'disk'));
  const check = Buffer.alloc(MiB);
  await dev.read(0, check);
  t.notOk(check.includes(0xaa), 'the torn write never reached the device');
});

t.test('stop({drainMs}) lets in-flight requests reply before closing', async (t) => {
  const held = new HeldReads(new MemoryBackend({ name: 'rb-drain', size: MiB }), 'rb-drain');
  const nbd = await startNbdServer([{ name: 'disk', device: held }]);
  t.teardown(() => nbd.stop());
  const c = await RawNbdClient.open({ port: nbd.port });
  t.teardown(() => c.destroy());
  await c.go('disk');
  c.request(NBD_CMD_READ, { cookie: 1n, offset: 0, length: 65536 });
  c.request(NBD_CMD_READ, { cookie: 2n, offset: 65536, length: 65536 });
  await until(() => held.held === 2);
  const negotiating = await RawNbdClient.connect({ port: nbd.port });

  let stopped = false;
  const stopping = nbd.server.stop({ drainMs: 30_000 }).then(() => (stopped = true));
  await negotiating.closed;
  t.pass('a client still negotiating is closed at once');
  t.equal(stopped, false, 'stop waits for in-flight requests');
  await t.rejects(RawNbdClient.open({ port: nbd.port }), 'no new connections are accepted');

  held.releaseAll();
  const replies = [await c.readSimple(65536), await c.readSimple(65536)];
  t.same(replies.map((r) => [r.cookie, r.error, r.payload.length]).sort(), [
    [1n, 0, 65536],
    [2n, 0, 65536],
  ]);
  await c.closed;
  await stopping;
  t.equal(stopped, true);
});

t.test('stop cuts connections still busy when drainMs expires', async (t) => {
  const held = new HeldReads(new MemoryBackend({ name: 'rb-cut', size: MiB }), 'rb-cut');
  const nbd = await startNbdServer([{ name: 'disk', device: held }]);
  const c = await RawNbdClient.open({ port: nbd.port });
  await c.go('disk');
  c.request(NBD_CMD_READ, { cookie: 1n, offset: 0, length: 4096 });
  await until(() => held.held === 1);
  await nbd.server.stop({ drainMs: 50 });
  await c.closed;
  t.equal(c.pending, 0, 'the held request got no reply');
  held.releaseAll();
  await nbd.stop();
});

t.test('a client that stops reading replies stops being read', async (t) => {
  let reads = 0;
  class CountReads extends Layer {
    override read(offset: number, target: Buffer): Promise<void> {
      reads++;
      return super.read(offset, target);
    }
  }
  const nbd = await startNbdServer([
    { name: 'disk', device: new CountReads(new MemoryBackend({ name: 'rb-bp', size: 8 * MiB }), 'rb-bp') },
  ]);
  t.teardown(() => nbd.stop());
  const c = await RawNbdClient.open({ port: nbd.port });
  t.teardown(() => c.destroy());
  await c.go('disk');
  c.socket.pause();
  const total = 300;
  for (let i = 0; i < total; i++) c.request(NBD_CMD_READ, { cookie: BigInt(i), offset: (i % 8) * MiB, length: MiB });
  // Give the server every chance to run ahead; with backpressure it must stop well short.
  let last = -1;
  while (reads !== last) {
    last = reads;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.ok(reads < total, `server paused after ${reads} of ${total} reads`);
  c.socket.resume();
  let failed = 0;
  for (let i = 0; i < total; i++) if ((await c.readSimple(MiB)).error !== 0) failed++;
  t.equal(failed, 0, 'all replies arrive without error');
  t.equal(reads, total, 'every request was served once the client read again');
});
