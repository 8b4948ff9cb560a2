import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, nbdUri, runCli, startMember } from '../helpers/blockgate-cli.js';
import { nbdsh } from '../helpers/clients.js';

ensureBuilt();
const dir = mkdtempSync(join(tmpdir(), 'blockgate-relative-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

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
