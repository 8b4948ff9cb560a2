import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { ConcatDevice } from '../../fabric/layers/concat.js';
import { validateMemberConfig } from '../../failover/config/validate.js';
import { Member } from '../../member/member.js';
import { gatewayPorts as ports } from '../../gateway/ports.js';
import type { BootPhase } from '../../failover/boot/phase.js';
import type { PortProvider } from '../../member/ports.js';

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
  const member = await Member.start(config, { dataDir: dir, ports });
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
  await t.rejects(Member.start(config, { dataDir: dir, ports }), { code: 'EADDRINUSE' });
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
  const member = await Member.start(config, { dataDir: dir, ports });
  await member.stop({ drainMs: 0 });
  t.same(closed.slice(0, 3), ['wrap', 'leaf1', 'leaf2'], 'the wrapper first, then what it wraps');
});

t.test('the boot phase runs after the graph is built and before the ports; its gates guard the exports', async (t) => {
  const events: string[] = [];
  const recordingPorts: PortProvider = {
    protocols: () => ['test'],
    port: (_protocol, context) => ({
      protocol: 'test',
      start: async () => void events.push(`port start (exports: ${context.fabric.listExports().map((e) => e.name).join(',')})`),
      stop: async () => void events.push('port stop'),
      addresses: () => [],
    }),
    setPorts: ports.setPorts,
  };
  let open = false;
  const bootPhase: BootPhase = {
    name: 'test',
    async boot(context) {
      events.push(`boot (devices: ${context.fabric.listDevices().map((d) => d.name).join(',')}; exports: ${context.fabric.listExports().length}; member ${context.memberId})`);
      return {
        mode: 'cluster',
        gate: (name) => (name === 'gated' ? () => open : undefined),
        start: () => void events.push('roles start'),
        stop: async () => void events.push('roles stop'),
        roles: () => [{ set: 's', role: 'standby' }],
        primaryOf: () => undefined,
      };
    },
  };
  const { config } = validateMemberConfig({
    member: 'unit',
    backends: [{ name: 'd', type: 'memory', size: '1MiB' }, { name: 'e', type: 'memory', size: '1MiB' }],
    exports: [{ name: 'free', device: 'd' }, { name: 'gated', device: 'e' }],
    nbd: { listen: [] },
  });
  const member = await Member.start(config, { dataDir: dir, ports: recordingPorts, bootPhase, memberId: 'm7' });
  t.same(events, ['boot (devices: d,e; exports: 0; member m7)', 'port start (exports: free,gated)', 'roles start']);
  t.same(member.boot.roles(), [{ set: 's', role: 'standby' }]);

  const buf = Buffer.alloc(512);
  await member.fabric.lookupExport('free')!.device.read(0, buf);
  let served = false;
  const held = member.fabric.lookupExport('gated')!.device.read(0, buf).then(() => (served = true));
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.equal(served, false, 'a closed gate holds the request');
  open = true;
  await member.fabric.lookupExport('gated')!.device.read(0, buf);
  t.pass('an open gate serves');
  void held.catch(() => undefined);

  await member.stop({ drainMs: 0 });
  t.same(events.slice(3), ['roles stop', 'port stop'], 'roles are handed over before the ports close');
});

t.test('a member without a cluster section boots standalone and serves every export', async (t) => {
  const { config } = validateMemberConfig({
    member: 'unit',
    backends: [{ name: 'd', type: 'memory', size: '1MiB' }],
    exports: [{ name: 'd', device: 'd' }],
    nbd: { listen: [] },
  });
  const member = await Member.start(config, { dataDir: dir, ports });
  t.equal(member.boot.mode, 'standalone');
  t.equal(member.boot.gate('d'), undefined);
  t.same(member.boot.roles(), []);
  await member.stop({ drainMs: 0 });
});
