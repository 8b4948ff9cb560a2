import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import '../../fabric/backends/memory-kind.js';
import { Layer } from '../../fabric/layer.js';
import { buildGraph, ConfigError, deviceKindNames, fields, parseSize, registerDeviceKind, type DeviceSpec } from '../../fabric/graph.js';

const closed: string[] = [];

class Tracked extends MemoryBackend {
  override async close(): Promise<void> {
    closed.push(this.name);
    return super.close();
  }
}

// A leaf that can be told to fail, and a layer wrapping one child, as real kinds do.
registerDeviceKind('test-leaf', {
  validate(spec, field) {
    fields.boolean(spec, 'fail', field);
  },
  async create(spec) {
    if (spec.fail) throw new ConfigError(spec.name, 'asked to fail');
    return new Tracked({ name: spec.name, size: 4096 });
  },
});
registerDeviceKind('test-wrap', {
  validate(spec, field) {
    fields.string(spec, 'child', field);
  },
  children: (spec) => [spec.child as string],
  async create(spec, context, field) {
    return new Layer(await context.use(spec.child as string, `${field}.child`), spec.name);
  },
});

const dir = '/nonexistent-data-dir';

t.test('builds children first and wires layers', async (t) => {
  const specs: DeviceSpec[] = [
    { name: 'top', type: 'test-wrap', child: 'mid' },
    { name: 'mid', type: 'test-wrap', child: 'leaf' },
    { name: 'leaf', type: 'test-leaf' },
    { name: 'ram', type: 'memory', size: '1MiB' },
  ];
  const built = await buildGraph(specs, { dataDir: dir });
  t.same([...built.keys()].sort(), ['leaf', 'mid', 'ram', 'top']);
  t.equal(built.get('top')!.size, 4096);
  t.equal(built.get('ram')!.size, 1 << 20);
  t.ok(deviceKindNames().includes('memory'));
});

t.test('unknown type, duplicate name, bad name', async (t) => {
  await t.rejects(buildGraph([{ name: 'a', type: 'warp-drive' }], { dataDir: dir }), { name: 'ConfigError', field: 'devices[0].type' });
  await t.rejects(
    buildGraph([{ name: 'a', type: 'test-leaf' }, { name: 'a', type: 'test-leaf' }], { dataDir: dir }),
    { field: 'devices[1].name', message: /declared twice/ },
  );
  await t.rejects(buildGraph([{ name: '', type: 'test-leaf' }], { dataDir: dir }), { field: 'devices[0].name' });
  await t.rejects(
    buildGraph([{ name: 'a', type: 'memory' }], { dataDir: dir, fieldOf: (i) => `backends[${i}]` }),
    { field: 'backends[0].size' },
    'fieldOf names the field; kinds validate their own fields',
  );
});

t.test('a device used twice, an unknown child, a cycle', async (t) => {
  await t.rejects(
    buildGraph(
      [
        { name: 'leaf', type: 'test-leaf' },
        { name: 'w1', type: 'test-wrap', child: 'leaf' },
        { name: 'w2', type: 'test-wrap', child: 'leaf' },
      ],
      { dataDir: dir },
    ),
    { field: 'devices[2]', message: /already used by w1/ },
  );
  await t.rejects(buildGraph([{ name: 'w', type: 'test-wrap', child: 'ghost' }], { dataDir: dir }), { message: /unknown device "ghost"/ });
  await t.rejects(
    buildGraph(
      [
        { name: 'a', type: 'test-wrap', child: 'b' },
        { name: 'b', type: 'test-wrap', child: 'a' },
      ],
      { dataDir: dir },
    ),
    { name: 'ConfigError', message: /cycle/ },
  );
  await t.rejects(buildGraph([{ name: 'self', type: 'test-wrap', child: 'self' }], { dataDir: dir }), { message: /cycle/ });
});

t.test('a failure closes the devices already built', async (t) => {
  closed.length = 0;
  await t.rejects(
    buildGraph(
      [
        { name: 'ok1', type: 'test-leaf' },
        { name: 'ok2', type: 'test-leaf' },
        { name: 'bad', type: 'test-leaf', fail: true },
      ],
      { dataDir: dir },
    ),
    { message: /asked to fail/ },
  );
  t.same(closed.sort(), ['ok1', 'ok2']);
});

t.test('registering a kind twice is a programming error', async (t) => {
  t.throws(() => registerDeviceKind('test-leaf', { validate() {}, create: async () => new MemoryBackend({ name: 'x', size: 1 }) }));
});

t.test('parseSize', async (t) => {
  const ok: [unknown, number][] = [
    [0, 0], [512, 512], ['512', 512], ['4k', 4096], ['4K', 4096], ['4KiB', 4096], ['4kb', 4096],
    ['1M', 1 << 20], ['1GiB', 2 ** 30], ['2T', 2 * 2 ** 40], ['1P', 2 ** 50], [' 8 MiB ', 8 << 20],
    ['1.5G', 1.5 * 2 ** 30], ['10b', 10], ['10B', 10],
  ];
  for (const [v, n] of ok) t.equal(parseSize(v), n, `${JSON.stringify(v)} = ${n}`);
  const bad: unknown[] = [-1, 1.5, '1.3', 'lots', '', 'G', '1X', '-4k', null, undefined, {}, 2 ** 60, '1e3', '9999999P'];
  for (const v of bad) t.equal(parseSize(v), undefined, `${JSON.stringify(v)} refused`);
});

t.test('field readers name the field', async (t) => {
  const spec: DeviceSpec = { name: 'd', type: 'x', n: 5, s: '', b: 'yes', l: ['a', 3], o: 'up' };
  t.throws(() => fields.number(spec, 'n', 'f', { min: 10 }), { field: 'f.n', problem: /at least 10/ });
  t.throws(() => fields.number(spec, 'n', 'f', { max: 1 }), { field: 'f.n' });
  t.equal(fields.number(spec, 'missing', 'f', { required: false }), undefined);
  t.throws(() => fields.number(spec, 'missing', 'f'), { field: 'f.missing' });
  t.throws(() => fields.string(spec, 's', 'f'), { field: 'f.s' });
  t.throws(() => fields.boolean(spec, 'b', 'f'), { field: 'f.b' });
  t.throws(() => fields.names(spec, 'l', 'f'), { field: 'f.l' });
  t.throws(() => fields.names({ ...spec, l: ['a'] }, 'l', 'f', { min: 2 }), { problem: /at least 2/ });
  t.equal(fields.oneOf(spec, 'missing', 'f', ['up', 'down'], 'down'), 'down');
  t.equal(fields.oneOf(spec, 'o', 'f', ['up', 'down']), 'up');
  t.throws(() => fields.oneOf(spec, 'n', 'f', ['up', 'down']), { field: 'f.n' });
});
