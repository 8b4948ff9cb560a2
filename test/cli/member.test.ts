import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fields, registerDeviceKind } from '../../fabric/graph.js';
import { Layer } from '../../fabric/layer.js';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { validateMemberConfig } from '../../failover/config/schema.js';
import { Member } from '../../gateway/member.js';

const dir = mkdtempSync(join(tmpdir(), 'blockgate-member-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function refused(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path);
    c.once('connect', () => (c.destroy(), resolve(false)));
    c.once('error', () => resolve(true));
  });
}

t.test('a member starts whole: exports on every listener, and stops cleanly', async (t) => {
  const socket = join(dir, 'ok.sock');
  const { config } = validateMemberConfig({
    member: 'unit',
    backends: [{ name: 'd', type: 'memory', size: '1MiB' }],
    exports: [{ name: 'd', device: 'd' }, { name: 'd-ro', device: 'd', readOnly: true }],
    nbd: { listen: [{ socket }, { host: '127.0.0.1', port: 0 }] },
  });
  const member = await Member.start(config, { dataDir: dir });
  t.same(member.fabric.listExports().map((e) => [e.name, e.readOnly]), [['d', false], ['d-ro', true]]);
  t.equal(member.addresses().nbd?.[0], `unix:${socket}`);
  t.match(member.addresses().nbd?.[1], /^127\.0\.0\.1:[1-9]\d*$/);
  t.equal(await refused(socket), false, 'listening');
  await member.stop();
  await member.stop(); // a second stop is harmless
  t.equal(await refused(socket), true, 'closed after stop');
  t.same(member.fabric.listDevices(), [], 'devices released');
});

t.test('if a listener cannot bind, start rejects and the listeners already bound are closed', async (t) => {
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => busy.close());
  const socket = join(dir, 'partial.sock');
  const { config } = validateMemberConfig({
    member: 'unit',
    backends: [{ name: 'd', type: 'memory', size: '1MiB' }],
    exports: [{ name: 'd', device: 'd' }],
    nbd: { listen: [{ socket }, { host: '127.0.0.1', port: (busy.address() as { port: number }).port }] },
  });
  await t.rejects(Member.start(config, { dataDir: dir }), { code: 'EADDRINUSE' });
  t.equal(await refused(socket), true, 'the Unix socket bound first is closed again');
});

t.test('on stop a layer closes before the devices it wraps', async (t) => {
  const closed: string[] = [];
  registerDeviceKind('test-leaf', {
    validate: () => undefined,
    create: async (spec) =>
      new (class extends MemoryBackend {
        override async close(): Promise<void> {
          closed.push(this.name);
          return super.close();
        }
      })({ name: spec.name, size: 4096 }),
  });
  registerDeviceKind('test-wrap', {
    validate: () => undefined,
    children: (spec) => [spec.inner as string],
    create: async (spec, context, field) =>
      new (class extends Layer {
        override async close(): Promise<void> {
          closed.push(this.name);
          await new Promise((resolve) => setImmediate(resolve)); // e.g. persisting a bitmap
          return super.close();
        }
      })(await context.use(spec.inner as string, field), spec.name),
  });
  const { config } = validateMemberConfig({
    member: 'unit',
    backends: [{ name: 'leaf', type: 'test-leaf' }],
    devices: [{ name: 'wrap', type: 'test-wrap', inner: 'leaf' }],
    exports: [{ name: 'wrap', device: 'wrap' }],
    nbd: { listen: [] },
  });
  const member = await Member.start(config, { dataDir: dir });
  await member.stop({ drainMs: 0 });
  t.same(closed.slice(0, 2), ['wrap', 'leaf'], 'the wrapper first, then what it wraps');
});
