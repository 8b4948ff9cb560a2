/**
 * Initiators that hold connections without logging in: a login that stalls is dropped
 * (15 s by default, as LIO), and a portal takes only so many connections, in total and per
 * initiator address. Each refusal is counted.
 */
import t from 'tap';
import { DEFAULT_LOGIN_TIMEOUT_MS } from '../../gateway/iscsi/server.js';
import { read10, startBlockgate, TestInitiator } from '../helpers/iscsi.js';

t.test('a connection that does not complete login in time is dropped', async (t) => {
  t.equal(DEFAULT_LOGIN_TIMEOUT_MS, 15_000, 'default: 15 s, as LIO');
  const bg = await startBlockgate({ server: { loginTimeoutMs: 300 } });
  t.teardown(() => bg.stop());
  const silent = await TestInitiator.connect(bg.port);
  const halfway = await TestInitiator.connect(bg.port);
  const first = halfway.bhs(0x43, 0x00 | (0 << 2) | 1); // security stage, no transit: login goes on
  halfway.send(first, Buffer.from('InitiatorName=iqn.2026-11.dev.blockgate:slow\0SessionType=Normal\0TargetName=iqn.2026-11.dev.blockgate:test\0AuthMethod=None\0'));
  t.equal(await silent.waitClosed(5000), true, 'a silent connection is dropped');
  t.equal(await halfway.waitClosed(5000), true, 'so is a login left half-way');
  t.equal(bg.server.refusals.count('iscsi', 'timeout'), 2, 'both counted');
  const ini = await TestInitiator.connect(bg.port);
  t.teardown(() => ini.close());
  await ini.login();
  await new Promise((r) => setTimeout(r, 600));
  t.equal((await ini.scsi(read10(0, 1), { read: 512 })).status, 0, 'a logged-in session is not subject to it');
});

t.test('connections per initiator address and per portal are limited', async (t) => {
  const bg = await startBlockgate({ server: { connectionLimits: { maxConnections: 3, maxConnectionsPerClient: 2 } } });
  t.teardown(() => bg.stop());
  const open: TestInitiator[] = [];
  t.teardown(() => open.forEach((c) => c.close()));
  const from = async (address: string) => {
    const c = await TestInitiator.connect(bg.port, undefined, address);
    open.push(c);
    return c;
  };
  await (await from('127.0.0.1')).login();
  await from('127.0.0.1');
  t.equal(await (await from('127.0.0.1')).waitClosed(), true, 'a third connection from one address is closed at once');
  t.equal(bg.server.refusals.count('iscsi', 'client-limit'), 1);
  const other = await from('127.0.0.2');
  t.equal(await (await from('127.0.0.3')).waitClosed(), true, 'the portal is full at 3, whoever asks');
  t.equal(bg.server.refusals.count('iscsi', 'connection-limit'), 1);
  other.close();
  await other.waitClosed();
  for (let i = 0; ; i++) {
    const again = await from('127.0.0.4');
    const stays = !(await again.waitClosed(100));
    if (stays) {
      await again.login();
      t.pass('a freed place is taken again');
      break;
    }
    if (i > 50) throw new Error('the freed place never came back');
  }
});
