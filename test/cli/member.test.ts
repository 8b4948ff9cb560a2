import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { ConcatDevice } from '../../fabric/layers/concat.js';
import { validateMemberConfig } from '../../failover/config/validate.js';
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
  // Watch the real kinds' close(): the concat must close before the memory it wraps.
  const spy = <T extends { prototype: { close(): Promise<void> } }>(cls: T, wait: boolean) => {
    const original = cls.prototype.close;
    cls.prototype.close = async function (this: { name: string }) {
      closed.push(this.name);
      if (wait) await new Promise((resolve) => setImmediate(resolve)); // e.g. persisting a bitmap
      return original.call(this);
    };
    t.teardown(() => void (cls.prototype.close = original));
  };
  spy(MemoryBackend, false);
  spy(ConcatDevice, true);
  const { config } = validateMemberConfig({
    member: 'unit',
    backends: [
      { name: 'leaf1', type: 'memory', size: 4096 },
      { name: 'leaf2', type: 'memory', size: 4096 },
    ],
    devices: [{ name: 'wrap', type: 'concat', devices: ['leaf1', 'leaf2'] }],
    exports: [{ name: 'wrap', device: 'wrap' }],
    nbd: { listen: [] },
  });
  const member = await Member.start(config, { dataDir: dir });
  await member.stop({ drainMs: 0 });
  t.same(closed.slice(0, 3), ['wrap', 'leaf1', 'leaf2'], 'the wrapper first, then what it wraps');
});
