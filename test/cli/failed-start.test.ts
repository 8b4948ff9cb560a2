import t from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ensureBuilt, runCli } from '../helpers/blockgate-cli.js';
import { storedConfigScratch } from '../helpers/stored-config.js';

ensureBuilt();
const { dir, writeConfig, servedExports } = storedConfigScratch(t, 'blockgate-failed-start-');

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

  // create: true under a directory that does not exist: the error names the directory, not the file.
  const noDir = join(dir, 'no-dir.yaml');
  writeFileSync(noDir, `backends:\n  - {name: f, type: file, path: ${join(dir, 'absent', 'f.img')}, size: 1MiB, create: true}\nexports:\n  - {name: f, device: f}\n`);
  const noParent = await runCli(['serve', '--config', noDir, '--data-dir', data, '--nbd', '127.0.0.1:0', '--iscsi', '127.0.0.1:0', '--api', '127.0.0.1:0']);
  t.equal(noParent.code, 2, noParent.stderr);
  t.match(noParent.stderr, /backends\[0\]\.path: the directory of .*absent\/f\.img does not exist \(create: true makes the file, not its directories\)/);

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
