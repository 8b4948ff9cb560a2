import t from 'tap';
import { ensureBuilt, runCli } from '../helpers/blockgate-cli.js';
import { storedConfigScratch } from '../helpers/stored-config.js';

ensureBuilt();
const { dataDir, writeConfig, servedExports } = storedConfigScratch(t, 'blockgate-persist-');

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
