import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, listExports, nbdUri, runCli, startMember } from '../helpers/blockgate-cli.js';
import { nbdsh } from '../helpers/clients.js';

ensureBuilt();
const dir = mkdtempSync(join(tmpdir(), 'blockgate-persist-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const dataDir = join(dir, 'data');
const socket = join(dir, 'nbd.sock');

function writeConfig(name: string, exports: Array<[string, string]>): string {
  const path = join(dir, name);
  const backends = exports.map(([e, size]) => `  - {name: ${e}, type: memory, size: ${size}}`).join('\n');
  const exported = exports.map(([e]) => `  - {name: ${e}, device: ${e}}`).join('\n');
  writeFileSync(path, `member: persist-test\nbackends:\n${backends}\nexports:\n${exported}\nnbd:\n  listen:\n    - socket: ${socket}\n`);
  return path;
}

async function servedExports(t: Parameters<Parameters<typeof t.test>[1]>[0], args: string[]): Promise<Array<[string, number]>> {
  const member = startMember(t, ['--data-dir', dataDir, ...args]);
  const listen = await member.ready();
  const exports = await listExports(listen.nbd![0]!);
  t.equal((await member.terminate()).code, 0, member.stderr);
  return exports.map((e) => [e['export-name'], e['export-size']]);
}

t.test('a restart without --config serves the stored configuration; changes make new generations', async (t) => {
  const first = writeConfig('first.yaml', [['alpha', '8MiB'], ['beta', '16MiB']]);
  t.same(await servedExports(t, ['--config', first]), [['alpha', 8 << 20], ['beta', 16 << 20]]);
  t.same(await servedExports(t, []), [['alpha', 8 << 20], ['beta', 16 << 20]], 'same devices with no --config');

  let shown = await runCli(['show-config', '--data-dir', dataDir]);
  t.equal(shown.code, 0, shown.stderr);
  t.match(shown.stdout, /^# generation 1 .* by persist-test {2}from file:.*first\.yaml/);
  t.match(shown.stdout, /name: alpha/);

  t.same(await servedExports(t, ['--config', first]), [['alpha', 8 << 20], ['beta', 16 << 20]]);
  shown = await runCli(['show-config', '--data-dir', dataDir]);
  t.match(shown.stdout, /^# generation 1 /, 'the same file again is no change');

  const second = writeConfig('second.json.yaml', [['gamma', '4MiB']]);
  t.same(await servedExports(t, ['--config', second]), [['gamma', 4 << 20]]);
  t.same(await servedExports(t, []), [['gamma', 4 << 20]]);
  const history = await runCli(['show-config', '--data-dir', dataDir, '--history']);
  t.equal(history.code, 0);
  t.same(
    history.stdout.trim().split('\n').map((l) => l.split(/\s+/).slice(0, 2).join(' ')),
    ['generation 2', 'generation 1'],
  );
});

t.test('a configuration that fails to start is not stored: the next plain start serves the last good one', async (t) => {
  const data = join(dir, 'data-failed-start');
  const good = writeConfig('good.yaml', [['good', '8MiB']]);
  t.same(await servedExports(t, ['--config', good, '--data-dir', data]), [['good', 8 << 20]]);

  // A missing backing file: a configuration error naming the field, and nothing stored.
  const missing = join(dir, 'missing.yaml');
  writeFileSync(missing, `backends:\n  - {name: f, type: file, path: ${join(dir, 'nowhere.img')}, size: 1MiB}\nexports:\n  - {name: f, device: f}\n`);
  const refused = await runCli(['serve', '--config', missing, '--data-dir', data, '--nbd', '127.0.0.1:0', '--iscsi', '127.0.0.1:0', '--api', '127.0.0.1:0']);
  t.equal(refused.code, 2, refused.stderr);
  t.match(refused.stderr, /configuration error: backends\[0\]\.path: .*nowhere\.img does not exist \(set create: true/);
  t.notOk(existsSync(join(dir, 'nowhere.img')), 'the file was not created');

  // A port in use: start-up fails (exit 1), and again nothing is stored.
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => busy.close());
  const port = (busy.address() as { port: number }).port;
  const clash = join(dir, 'clash.yaml');
  writeFileSync(clash, `backends:\n  - {name: c, type: memory, size: 1MiB}\nexports:\n  - {name: c, device: c}\nnbd:\n  listen: ["127.0.0.1:${port}"]\n`);
  const failed = await runCli(['serve', '--config', clash, '--data-dir', data, '--iscsi', '127.0.0.1:0', '--api', '127.0.0.1:0']);
  t.equal(failed.code, 1, failed.stderr);

  const shown = await runCli(['show-config', '--data-dir', data, '--history']);
  t.same(shown.stdout.trim().split('\n').length, 1, 'still one generation');
  t.match(shown.stdout, /generation 1 .*good\.yaml/);
  t.same(await servedExports(t, ['--data-dir', data]), [['good', 8 << 20]], 'a plain start serves the last configuration that started');
});

t.test('a relative backing-file path is taken from the config file and stored absolute', async (t) => {
  const confDir = join(dir, 'conf');
  const elsewhere = join(dir, 'elsewhere');
  mkdirSync(confDir);
  mkdirSync(elsewhere);
  const data = join(dir, 'data-relative');
  const path = join(confDir, 'relative.yaml');
  writeFileSync(path, `backends:\n  - {name: f, type: file, path: disks/f.img, size: 1MiB, create: true}\nexports:\n  - {name: f, device: f}\nnbd:\n  listen: ["127.0.0.1:0"]\n`);
  mkdirSync(join(confDir, 'disks'));
  const first = startMember(t, ['--config', path, '--data-dir', data], { cwd: elsewhere });
  const listen = await first.ready();
  const wrote = await nbdsh(nbdUri(listen.nbd![0]!, 'f'), 'h.pwrite(b"persisted!" * 100, 0); h.flush()');
  t.equal(wrote.code, 0, wrote.stderr);
  t.equal((await first.terminate()).code, 0, first.stderr);
  t.ok(existsSync(join(confDir, 'disks', 'f.img')), 'the file is created beside the config file, not in the working directory');
  t.notOk(existsSync(join(elsewhere, 'disks')));

  const shown = await runCli(['show-config', '--data-dir', data]);
  t.match(shown.stdout, new RegExp(`path: ${join(confDir, 'disks', 'f.img').replace(/[.]/g, '\\.')}`), 'stored absolute');

  // Restarted from yet another directory, it serves the same file: the data is there.
  const again = startMember(t, ['--data-dir', data], { cwd: dir });
  const listen2 = await again.ready();
  const read = await nbdsh(nbdUri(listen2.nbd![0]!, 'f'), 'import sys; sys.stdout.write(h.pread(10, 0).decode())');
  t.equal(read.stdout, 'persisted!', read.stderr);
  t.equal((await again.terminate()).code, 0, again.stderr);
  t.notOk(existsSync(join(dir, 'disks')), 'no empty disk appeared under the new working directory');
});
