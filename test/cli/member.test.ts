import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
