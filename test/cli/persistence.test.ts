import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, listExports, runCli, startMember } from '../helpers/blockgate-cli.js';

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
