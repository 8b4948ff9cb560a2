/**
 * `blockgate config show|diff|apply|rollback` as the real binary against a real member:
 * a diff changes nothing (nbdinfo still lists the old exports, no generation stored), an
 * apply serves the new export with its relative backing file taken from the file's
 * directory, a change the member cannot make live exits 5 with its reason and changes
 * nothing, an invalid file exits 2 naming the field and stores nothing, and a rollback
 * serves the first generation again.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureBuilt, listExports, runCli, startMember, type CliResult } from '../helpers/blockgate-cli.js';
import { tempDir } from '../helpers/clients.js';

ensureBuilt();

const BASE = `member: cfgcli
backends:
  - {name: m0, type: memory, size: 4MiB}
nbd:
  listen: ["127.0.0.1:0"]
`;
const ONE = `${BASE}exports:
  - {name: a, device: m0}
`;
/** Adds a file-backed export whose path is relative to the file's directory. */
const TWO = `member: cfgcli
backends:
  - {name: m0, type: memory, size: 4MiB}
  - {name: f, type: file, path: disks/b.img, size: 2MiB, create: true}
nbd:
  listen: ["127.0.0.1:0"]
exports:
  - {name: a, device: m0}
  - {name: b, device: f}
`;

interface Shown {
  generation: number;
  source: string;
  config: { exports: Array<{ name: string }> };
}

t.test('config show, diff, apply, refusals, rollback against a running member', async (t) => {
  const dir = await tempDir(t, 'config-cli-');
  const confDir = join(dir, 'conf');
  await mkdir(join(confDir, 'disks'), { recursive: true });
  const dataDir = join(dir, 'data');
  await writeFile(join(dir, 'one.yaml'), ONE);
  await writeFile(join(confDir, 'two.yaml'), TWO);
  await writeFile(join(dir, 'renamed.yaml'), TWO.replace('member: cfgcli', 'member: other').replace('disks/b.img', join(confDir, 'disks', 'b.img')));
  await writeFile(join(dir, 'invalid.yaml'), TWO.replace('{name: b, device: f}', '{name: b, device: nope}'));

  const member = startMember(t, ['--config', join(dir, 'one.yaml'), '--data-dir', dataDir]);
  const listen = await member.ready();
  const api = `http://${listen.api![0]}`;
  const nbd = listen.nbd![0]!;
  // The CLI finds the local member's admin token in its data directory.
  const cli = (...args: string[]): Promise<CliResult> => runCli(['config', ...args, '--member', api], { cwd: dir, env: { BLOCKGATE_DATA_DIR: dataDir } });
  const exported = async () => (await listExports(nbd)).map((e) => e['export-name']).sort();
  const generations = async () => (JSON.parse((await cli('show', '--generations', '--json')).stdout) as { generations: Array<{ generation: number }> }).generations.map((g) => g.generation);

  await t.test('show', async (t) => {
    const shown = await cli('show');
    t.equal(shown.code, 0, shown.stderr);
    t.match(shown.stdout, /^# generation 1 .* from file:\S+one\.yaml /m);
    t.match(shown.stdout, /^ {2}- name: a\n {4}device: m0$/m, 'the configuration as YAML');
    const json = JSON.parse((await cli('show', '--json')).stdout) as Shown;
    t.same([json.generation, json.config.exports.map((e) => e.name)], [1, ['a']]);
    t.match((await cli('show', '--generations')).stdout, /^GENERATION +WRITTEN +BY +SOURCE +CHECKSUM\n1 \(running\) +\S+ +cfgcli +file:/m);
    t.equal((await cli('show', '7')).code, 1, 'an unknown generation: exit 1');
    t.equal((await runCli(['config', 'show', '--member', 'http://127.0.0.1:1'])).code, 3, 'no member reachable: exit 3');
  });

  await t.test('diff changes nothing', async (t) => {
    const diff = await cli('diff', join(confDir, 'two.yaml'));
    t.equal(diff.code, 0, diff.stderr);
    t.match(diff.stdout, /against generation 1 on http:\S+:\n {2}\+ device f\n {2}\+ export b\nthe member can make these changes live\n$/);
    const json = JSON.parse((await cli('diff', join(confDir, 'two.yaml'), '--json')).stdout) as { dryRun: boolean; diff: { exports: { added: string[] } } };
    t.same([json.dryRun, json.diff.exports.added], [true, ['b']]);
    t.same(await exported(), ['a'], 'nbdinfo: still only the old export');
    t.same(await generations(), [1], 'nothing stored');
    t.notOk(existsSync(join(confDir, 'disks', 'b.img')), 'no backing file created');
  });

  await t.test('apply', async (t) => {
    const apply = await cli('apply', join(confDir, 'two.yaml'));
    t.equal(apply.code, 0, apply.stderr);
    t.match(apply.stdout, /applied on http:\S+, stored as generation 2:\n {2}\+ device f\n {2}\+ export b\n$/);
    t.same(await exported(), ['a', 'b'], 'nbdinfo lists the new export');
    t.ok(existsSync(join(confDir, 'disks', 'b.img')), 'the relative backing path was taken from the file\'s directory');
    t.same(await generations(), [2, 1]);
    t.match((await cli('diff', '1', '2')).stdout, /^generation 1 -> 2:\n {2}\+ device f\n {2}\+ export b\n$/, 'kept generations diffed');
    const again = await cli('apply', join(confDir, 'two.yaml'));
    t.match(again.stdout, /no changes; http:\S+ runs generation 2/);
  });

  await t.test('a change the member cannot make live is refused, nothing changed', async (t) => {
    const refused = await cli('apply', join(dir, 'renamed.yaml'));
    t.equal(refused.code, 5, 'exit 5');
    t.match(refused.stderr, /refused: the member cannot make this change live; nothing was changed:\n {2}member: changes only when the member restarts/);
    t.equal(refused.stdout, '');
    const diff = await cli('diff', join(dir, 'renamed.yaml'));
    t.equal(diff.code, 5, 'its diff exits 5 as well');
    t.match(diff.stdout, /^ {2}~ member\n.*refused.*\n {2}member: changes only when the member restarts$/m);
    const readOnly = await runCli(['config', 'apply', join(confDir, 'two.yaml'), '--member', api, '--token-file', join(dataDir, 'api', 'read.token')]);
    t.equal(readOnly.code, 4, 'the read-only token cannot apply: exit 4');
    t.same(await exported(), ['a', 'b']);
    t.same(await generations(), [2, 1], 'nothing stored');
  });

  await t.test('an invalid file is refused naming the field, nothing stored', async (t) => {
    const invalid = await cli('apply', join(dir, 'invalid.yaml'));
    t.equal(invalid.code, 2, 'exit 2, as check-config');
    t.match(invalid.stderr, /invalid\.yaml: configuration error: exports\[1\]\.device: refers to unknown device "nope"/);
    t.equal((await cli('apply', join(dir, 'missing.yaml'))).code, 2, 'a missing file: exit 2');
    t.same(await exported(), ['a', 'b']);
    t.same(await generations(), [2, 1]);
  });

  await t.test('rollback to the first generation', async (t) => {
    const rollback = await cli('rollback', '1');
    t.equal(rollback.code, 0, rollback.stderr);
    t.match(rollback.stdout, /^rollback to generation 1: applied on http:\S+, stored as generation 3:\n {2}- device f\n {2}- export b\nclients were disconnected from: export b\n$/);
    t.same(await exported(), ['a'], 'nbdinfo: the export is gone');
    const shown = JSON.parse((await cli('show', '--json')).stdout) as Shown;
    t.same([shown.generation, shown.source], [3, 'rollback:1']);
    t.equal((await cli('rollback', '9')).code, 1, 'an unknown generation: exit 1');
  });

  await member.terminate();
});
