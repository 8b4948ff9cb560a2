/**
 * The redesign (issue 7) kept each example's device graph: `check-config` prints, for every
 * example that existed before it, what it printed at commit 74a4e6f (saved in
 * check-config-before/, without the first line, which names the file's path). And a mirror
 * over existing files of different sizes that the config leaves unsized is refused by
 * check-config itself, naming the field, not only when the member opens the files.
 */
import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, ROOT, runCli } from '../helpers/blockgate-cli.js';

ensureBuilt();
const BEFORE = join(import.meta.dirname, 'check-config-before');

for (const saved of readdirSync(BEFORE)) {
  const example = saved.replace(/\.txt$/, '');
  t.test(`check-config ${example} prints the graph it printed before the redesign`, async (t) => {
    const r = await runCli(['check-config', join(ROOT, 'examples', example)]);
    t.equal(r.code, 0, r.stderr);
    const [first, ...rest] = r.stdout.split('\n');
    t.match(first, /^configuration OK: /);
    t.equal(rest.join('\n'), readFileSync(join(BEFORE, saved), 'utf8'));
  });
}

t.test('check-config refuses a mirror over existing files of different sizes, naming the field', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'blockgate-sizes-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [a, b] = [join(dir, 'a.img'), join(dir, 'b.img')];
  writeFileSync(a, '');
  writeFileSync(b, '');
  truncateSync(a, 1 << 20);
  truncateSync(b, 2 << 20);
  const config = join(dir, 'mirror.yaml');
  writeFileSync(
    config,
    `backends:\n  - {name: a, type: file, path: ${a}}\n  - {name: b, type: file, path: ${b}}\n` +
      'devices:\n  - {name: m, type: mirror, replicas: [a, b]}\nexports:\n  - {name: m, device: m}\n',
  );
  const refused = await runCli(['check-config', config]);
  t.equal(refused.code, 2, refused.stderr);
  t.match(refused.stderr, /devices\[0\]\.replicas: replicas of a mirror hold the same data: they must have the same size \(a: 1 MiB, b: 2 MiB\)/);
  truncateSync(b, 1 << 20);
  const accepted = await runCli(['check-config', config]);
  t.equal(accepted.code, 0, accepted.stderr);
  t.match(accepted.stdout, /m \[mirror\] replicas=\["a","b"\]/);
});
