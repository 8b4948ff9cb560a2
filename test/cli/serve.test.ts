import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ensureBuilt, listExports, startMember } from '../helpers/blockgate-cli.js';

const execFileAsync = promisify(execFile);
ensureBuilt();
const dir = mkdtempSync(join(tmpdir(), 'blockgate-serve-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('the demo serves a 1 GiB export named demo; SIGTERM stops it with status 0', async (t) => {
  const member = startMember(t, ['--data-dir', join(dir, 'demo'), '--nbd', '127.0.0.1:0']);
  const listen = await member.ready();
  t.equal(listen.nbd?.length, 1);
  t.match(listen.nbd![0], /^127\.0\.0\.1:\d+$/);
  t.not(listen.nbd![0], '127.0.0.1:0', 'the log gives the port the kernel chose');
  const exports = await listExports(listen.nbd![0]!);
  t.same(exports.map((e) => [e['export-name'], e['export-size']]), [['demo', 1024 ** 3]]);
  t.ok(member.lines.some((l) => l.msg === 'no configuration stored: serving the demo'));

  t.equal(listen.iscsi?.length, 1, 'the demo is exported over iSCSI too');
  const portal = /^(127\.0\.0\.1:\d+) iqn\.2026-11\.dev\.blockgate:demo tpg 1$/.exec(listen.iscsi![0]!);
  t.ok(portal, `iSCSI portal logged: ${listen.iscsi![0]}`);
  const inq = await execFileAsync('iscsi-readcapacity16', [`iscsi://${portal![1]}/iqn.2026-11.dev.blockgate:demo/0`]);
  t.match(inq.stdout, /Total size:1073741824/, 'LUN 0 is the 1 GiB demo device');

  const { code, signal } = await member.terminate('SIGTERM');
  t.equal(signal, null);
  t.equal(code, 0, member.stderr);
  t.ok(member.lines.some((l) => l.msg === 'member stopped'), 'the member logged its stop');
});

t.test('SIGINT stops a member with status 0 too', async (t) => {
  const socket = join(dir, 'int.sock');
  const member = startMember(t, ['--data-dir', join(dir, 'int'), '--nbd', socket]);
  t.same((await member.ready()).nbd, [`unix:${socket}`]);
  t.equal((await member.terminate('SIGINT')).code, 0, member.stderr);
});

t.test('a listener that cannot bind stops start-up with status 1 and closes what had started', async (t) => {
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => busy.close());
  const port = (busy.address() as { port: number }).port;
  const socket = join(dir, 'partial.sock');
  const config = join(dir, 'busy.yaml');
  writeFileSync(
    config,
    `backends: [{name: d, type: memory, size: 1MiB}]\nexports: [{name: d, device: d}]\n` +
      `nbd:\n  listen:\n    - socket: ${socket}\n    - host: 127.0.0.1\n      port: ${port}\n`,
  );
  const member = startMember(t, ['--config', config, '--data-dir', join(dir, 'busy')]);
  const { code } = await member.exited;
  t.equal(code, 1);
  t.match(member.stderr, /start-up failed/);
  t.notOk(member.lines.some((l) => l.msg === 'ready'));
  const refused = await new Promise<boolean>((resolve) => {
    const c = connect(socket);
    c.once('connect', () => (c.destroy(), resolve(false)));
    c.once('error', () => resolve(true));
  });
  t.ok(refused, 'the Unix socket that had bound is closed again');
});

t.test('--log-level error silences the info lines of every component', async (t) => {
  const socket = join(dir, 'quiet.sock');
  const member = startMember(t, ['--data-dir', join(dir, 'quiet'), '--nbd', socket, '--log-level', 'error']);
  let exports;
  for (let attempt = 0; !exports; attempt++) {
    exports = await listExports(`unix:${socket}`).catch((err: unknown) => {
      if (attempt > 150 || member.child.exitCode !== null) throw err;
      return new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 200));
    });
  }
  t.same(exports.map((e) => e['export-name']), ['demo']);
  t.equal((await member.terminate()).code, 0, member.stderr);
  t.same(member.lines.filter((l) => typeof l.level !== 'number' || l.level < 50), [], 'nothing below error was logged');
});
