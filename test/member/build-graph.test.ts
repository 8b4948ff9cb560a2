import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { buildGraph } from '../../member/devices/build.js';

const dir = mkdtempSync(join(tmpdir(), 'blockgate-graph-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('builds children first and wires layers', async (t) => {
  const built = await buildGraph(
    [
      { name: 'top', type: 'concat', devices: ['mid', 'c'] },
      { name: 'mid', type: 'stripe', devices: ['a', 'b'], stripeUnit: '4k' },
      { name: 'a', type: 'memory', size: '1MiB' },
      { name: 'b', type: 'memory', size: '1MiB' },
      { name: 'c', type: 'memory', size: 4096 },
    ],
    { dataDir: dir },
  );
  t.same([...built.keys()].sort(), ['a', 'b', 'c', 'mid', 'top']);
  t.equal(built.get('mid')!.size, 2 << 20);
  t.equal(built.get('top')!.size, (2 << 20) + 4096);
  await Promise.all([...built.values()].map((d) => d.close()));
});

t.test('nothing is built from a configuration with mistakes; all of them are reported', async (t) => {
  await t.rejects(
    buildGraph(
      [
        { name: 'a', type: 'warp-drive' },
        { name: 'b', type: 'memory' },
        { name: 'b', type: 'memory', size: 1 },
        { name: 'w', type: 'concat', devices: ['ghost', 'b'] },
      ],
      { dataDir: dir },
    ),
    { name: 'ConfigError', problems: [{ field: 'devices[0].type' }, { field: 'devices[1].size' }] },
    'schema problems first',
  );
  await t.rejects(
    buildGraph(
      [
        { name: 'b', type: 'memory', size: 1 },
        { name: 'b', type: 'memory', size: 1 },
        { name: 'w', type: 'concat', devices: ['ghost', 'b'] },
      ],
      { dataDir: dir },
    ),
    { name: 'ConfigError', problems: [{ field: 'devices[1].name', problem: /declared twice/ }, { field: 'devices[2].devices[0]', problem: /unknown device "ghost"/ }] },
  );
});

t.test('a device used twice, a cycle', async (t) => {
  const mem = (name: string) => ({ name, type: 'memory', size: 4096 });
  await t.rejects(
    buildGraph([mem('l1'), mem('l2'), mem('l3'), { name: 'w1', type: 'concat', devices: ['l1', 'l2'] }, { name: 'w2', type: 'concat', devices: ['l3', 'l1'] }], { dataDir: dir }),
    { field: 'devices[4].devices[1]', message: /already used by w1/ },
  );
  await t.rejects(
    buildGraph([mem('l1'), { name: 'a', type: 'concat', devices: ['b', 'l1'] }, { name: 'b', type: 'concat', devices: ['a', 'l1'] }], { dataDir: dir }),
    { name: 'ConfigError', message: /cycle/ },
  );
  await t.rejects(buildGraph([mem('l1'), { name: 'self', type: 'concat', devices: ['self', 'l1'] }], { dataDir: dir }), { message: /self → self form a cycle/ });
});

t.test('a failure closes the devices already built', async (t) => {
  const closed: string[] = [];
  const original = MemoryBackend.prototype.close;
  MemoryBackend.prototype.close = async function (this: MemoryBackend) {
    closed.push(this.name);
    return original.call(this);
  };
  t.teardown(() => void (MemoryBackend.prototype.close = original));
  // A remote disk nobody answers for: refused at once.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await t.rejects(
    buildGraph(
      [
        { name: 'ok1', type: 'memory', size: 4096 },
        { name: 'ok2', type: 'memory', size: 4096 },
        { name: 'bad', type: 'nbd', address: `127.0.0.1:${port}`, connectTimeoutMs: 2000 },
      ],
      { dataDir: dir },
    ),
  );
  t.same(closed.sort(), ['ok1', 'ok2']);
});
