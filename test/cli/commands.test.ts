import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, ensureBuilt, runCli } from '../helpers/blockgate-cli.js';

ensureBuilt();
const dir = mkdtempSync(join(tmpdir(), 'blockgate-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('--help prints the usage on stdout and exits 0', async (t) => {
  const r = await runCli(['--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /Usage:\n\s+blockgate serve \[--config FILE\]/);
  t.match(r.stdout, /check-config/);
  t.equal(r.stderr, '');
});

t.test('serve --help and check-config --help describe their options', async (t) => {
  const serve = await runCli(['serve', '--help']);
  t.equal(serve.code, 0);
  for (const option of ['--config', '--data-dir', '--nbd', '--log-level']) t.match(serve.stdout, option);
  const check = await runCli(['check-config', '--help']);
  t.equal(check.code, 0);
  t.match(check.stdout, /Usage: blockgate check-config FILE/);
});

t.test('--version prints the package version', async (t) => {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const r = await runCli(['--version']);
  t.equal(r.code, 0);
  t.equal(r.stdout, `blockgate ${version}\n`);
});

t.test('command-line mistakes exit 2 with a message on stderr', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['frobnicate'], /unknown command "frobnicate"/],
    [['serve', '--bogus'], /bogus/],
    [['serve', '--nbd', 'localhost'], /--nbd "localhost": expected HOST:PORT/],
    [['serve', '--nbd', '127.0.0.1:99999'], /port must be from 0 to 65535/],
    [['serve', '--log-level', 'loud'], /--log-level must be one of/],
    [['check-config'], /exactly one FILE/],
  ];
  const results = await Promise.all(cases.map(([args]) => runCli(args)));
  cases.forEach(([args, message], i) => {
    t.equal(results[i]!.code, 2, args.join(' '));
    t.match(results[i]!.stderr, message, args.join(' '));
  });
});

t.test('check-config prints the device graph of a valid file', async (t) => {
  const r = await runCli(['check-config', join(ROOT, 'examples', 'member.yaml')]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /configuration OK/);
  t.match(r.stdout, /member: gw-a/);
  t.match(r.stdout, /scratch \[memory\] size=1GiB\s+\(backends\[0\]\)/);
  t.match(r.stdout, /data -> disk1 \(read-write\)/);
  t.match(r.stdout, /nbd listen: 127\.0\.0\.1:10809, unix:\/tmp\/blockgate-nbd\.sock/);
});

t.test('a bad configuration exits 2 and names the field, for check-config and serve alike', async (t) => {
  // serve runs the same validation: it is checked on the first two, to keep process starts few.
  const cases: Array<[string, string, string]> = [
    ['unknown-device.yaml', 'backends:\n  - {name: a, type: memory, size: 1MiB}\nexports:\n  - {name: e, device: nope}\n', 'exports[0].device'],
    ['bad-port.json', '{"nbd": {"listen": [{"host": "127.0.0.1", "port": 65536}]}}', 'nbd.listen[0].port'],
    ['typo.yaml', 'backend:\n  - {name: a, type: memory, size: 1MiB}\n', 'backend'],
    ['bad-size.yaml', 'backends:\n  - {name: a, type: memory, size: huge}\n', 'backends[0].size'],
  ];
  await Promise.all(
    cases.map(async ([name, text, field], i) => {
      const path = join(dir, name);
      writeFileSync(path, text);
      const check = await runCli(['check-config', path]);
      t.equal(check.code, 2, `check-config ${name}`);
      t.match(check.stderr, `${field}:`, `check-config ${name} names ${field}`);
      if (i >= 2) return;
      const serve = await runCli(['serve', '--config', path, '--data-dir', join(dir, `data-${name}`), '--nbd', '127.0.0.1:0']);
      t.equal(serve.code, 2, `serve ${name}`);
      t.match(serve.stderr, `configuration error: ${field}:`, `serve ${name} names ${field}`);
    }),
  );
});

t.test('show-config on an empty data directory says the demo would run', async (t) => {
  const r = await runCli(['show-config', '--data-dir', join(dir, 'empty')]);
  t.equal(r.code, 1);
  t.match(r.stdout, /no configuration stored/);
});
