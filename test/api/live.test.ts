import t from 'tap';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FabricSwitch } from '../../fabric/switch.js';
import { LiveStream } from '../../gateway/api/live-stream.js';
import { histogramQuantile } from '../../gateway/api/rates.js';
import { RateSampler, type Sample } from '../../gateway/api/sampler.js';
import { LiveEvents, memberApi } from '../helpers/api.js';
import { ensureBuilt, nbdUri, startMember } from '../helpers/blockgate-cli.js';
import { startBackground, tempDir } from '../helpers/clients.js';

ensureBuilt();

t.test('histogram quantiles interpolate inside the bucket, as histogram_quantile does', async (t) => {
  // Buckets ≤50, ≤100, ≤250 µs…: 10 samples in the first, 10 in the second.
  const counts = [10, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  t.equal(histogramQuantile(counts, 0.5), 50, 'the median at the top of the first bucket');
  t.equal(histogramQuantile(counts, 0.75), 75, 'half-way through the second');
  t.equal(histogramQuantile(counts.map(() => 0), 0.5), null, 'no samples: no latency');
  const slow = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4];
  t.equal(histogramQuantile(slow, 0.99), 1_000_000, 'past the last bound reads as the last bound');
});

t.test('the live stream sends history, then a sample and the state every second; under fio the export’s rates move', async (t) => {
  const dir = await tempDir(t, 'blockgate-ops-live-');
  const configPath = join(dir, 'member.json');
  await writeFile(
    configPath,
    JSON.stringify({
      member: 'live',
      backends: [
        { name: 'r0', type: 'memory', size: '32MiB' },
        { name: 'r1', type: 'memory', size: '32MiB' },
      ],
      devices: [{ name: 'm0', type: 'mirror', replicas: ['r0', 'r1'] }],
      exports: [
        { name: 'vol', device: 'm0' },
        { name: 'vol-ro', device: 'm0', readOnly: true },
      ],
      nbd: { listen: ['127.0.0.1:0'] },
    }),
  );
  const member = startMember(t, ['--config', configPath, '--data-dir', join(dir, 'data')]);
  const listen = await member.ready();
  const api = await memberApi(member, 'read');
  t.equal((await api.request('/api/v1/live', { token: null })).status, 401, 'the stream needs a token');

  const live = await LiveEvents.open(api);
  t.teardown(() => live.close());
  const hello = (await live.next('hello')) as { intervalMs: number };
  t.equal(hello.intervalMs, 1000, 'one sample a second');
  t.ok(Array.isArray(await live.next('history')), 'the recent history comes first');
  const state = (await live.next('state')) as { status: { member: string; devices: Array<{ name: string }> }; sessions: unknown[] };
  t.equal(state.status.member, 'live', 'the state carries the status');
  t.ok(state.status.devices.some((d) => d.name === 'm0'));
  t.same(state.sessions, []);
  const idle = (await live.next('sample')) as Sample;
  t.equal(idle.exports.vol?.iops, 0, 'an export nobody opened charts as idle');

  const fio = startBackground('fio', [
    '--name=live', '--ioengine=nbd', `--uri=${nbdUri(listen.nbd![0]!, 'vol')}`, '--rw=randrw', '--bs=4k', '--iodepth=4',
    '--size=16m', '--time_based', '--runtime=60', '--rate_iops=400',
  ]);
  t.teardown(() => fio.stop());
  const busy = (await live.next('sample', (s: Sample) => (s.exports.vol?.iops ?? 0) > 50 && (s.exports.vol?.readBps ?? 0) > 0 && (s.exports.vol?.writeBps ?? 0) > 0)) as Sample;
  const vol = busy.exports.vol!;
  t.ok(vol.p50us !== null && vol.p50us > 0, `p50 latency measured (${vol.p50us} µs)`);
  t.ok(vol.p99us! >= vol.p50us!, 'p99 ≥ p50');
  t.ok(busy.devices.m0!.iops >= vol.iops, 'the device counts the export’s I/O');
  t.equal(busy.exports['vol-ro']!.iops, 0, 'the other export of the same device stays idle: counted per export');
  const withSession = (await live.next('state', (s: { sessions: unknown[] }) => s.sessions.length > 0)) as { sessions: Array<{ exports: string[] }> };
  t.ok(withSession.sessions.some((s) => s.exports.includes('vol')), 'the state lists fio’s connection');
  await fio.stop();

  // A dashboard opened now draws the last minutes at once.
  const late = await LiveEvents.open(api);
  t.teardown(() => late.close());
  const history = (await late.next('history')) as Sample[];
  t.ok(history.some((s) => (s.exports.vol?.iops ?? 0) > 50), 'the history holds the busy seconds');
  t.ok(history.every((s, i) => i === 0 || s.t > history[i - 1]!.t), 'in time order');

  const stopped = member.terminate();
  await t.rejects(live.next('never'), /ended/, 'the member ends the stream when it stops');
  t.equal((await stopped).code, 0, 'the member stops with streams open');
});

/** A stream server over a bare switch, with small limits. */
async function streamServer(t: { teardown(fn: () => unknown): void }, options: { maxClients: number; maxBufferedBytes: number; state: () => unknown }) {
  const sampler = new RateSampler(new FabricSwitch(), { intervalMs: 50 });
  sampler.start();
  const live = new LiveStream({ sampler, ...options });
  const server: Server = createServer((req, res) => {
    try {
      live.open(req, res);
    } catch (err) {
      res.writeHead((err as { status: number }).status).end();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    live.closeAll();
    sampler.stop();
    server.closeAllConnections();
    server.close();
  });
  return { live, port: (server.address() as { port: number }).port };
}

t.test('streams are capped in number, and a client that stops reading is dropped, not buffered', async (t) => {
  // 64 KiB of state per tick: a client that does not read fills its socket fast.
  const { live, port } = await streamServer(t, { maxClients: 2, maxBufferedBytes: 256 * 1024, state: () => ({ filler: 'x'.repeat(64 * 1024) }) });
  const request = (): Promise<number> =>
    new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      socket.once('data', (d: Buffer) => {
        resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(d.toString('latin1'))?.[1]));
        socket.pause(); // and never read again
      });
      t.teardown(() => socket.destroy());
    });
  t.equal(await request(), 200);
  t.equal(await request(), 200);
  t.equal(await request(), 503, 'the third stream is refused');
  t.equal(live.clientCount, 2);
  const deadline = Date.now() + 30_000;
  while (live.clientCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.equal(live.clientCount, 0, 'both clients that stopped reading were dropped');
  t.equal(await request(), 200, 'and their places are free again');
});
