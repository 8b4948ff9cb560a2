/**
 * The man page and the bash completion are made from the help texts: every option a help
 * text lists is accepted by the command, appears in the man page (which groff renders without
 * warnings), and completes in a real bash, with and without the bash-completion package.
 */
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseHelp } from '../../gateway/cli/help-doc.js';
import { HELP } from '../../gateway/cli/usage.js';
import { ensureBuilt, runCli } from '../helpers/blockgate-cli.js';
import { runTool } from '../helpers/clients.js';

ensureBuilt();
const dir = mkdtempSync(join(tmpdir(), 'blockgate-docs-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const docs = [...HELP].map(([path, text]) => parseHelp(path, text));

t.test('every option a help text lists is accepted by its command', async (t) => {
  for (const doc of docs.filter((d) => d.options.length > 0)) {
    const args = [...doc.path.split(' ')];
    for (const o of doc.options) {
      if (o.long === 'help') continue;
      args.push(`--${o.long}`);
      if (o.arg) args.push(o.arg === 'FORMAT' ? 'raw' : o.arg === 'LEVEL' ? 'info' : o.arg.includes(':') ? '127.0.0.1:0' : `/x/${o.arg}`);
    }
    args.push('--help');
    const r = await runCli(args);
    t.equal(r.code, 0, `blockgate ${args.join(' ')}: ${r.stderr}`);
    t.equal(r.stdout, HELP.get(doc.path), `${doc.path} --help prints its help text`);
  }
  t.equal((await runCli(['image', 'import', '--no-such-option', '--help'])).code, 2, 'an option not in the help is refused');
});

t.test('help texts parse into usage, options and sections; a text off the layout is refused', async (t) => {
  const serve = docs.find((d) => d.path === 'serve')!;
  t.match(serve.usage, [/^blockgate serve \[--config FILE\] .*\[--api HOST:PORT\] .*\[--log-level LEVEL\]$/]);
  t.same(serve.options.find((o) => o.long === 'config'), { short: 'c', long: 'config', arg: 'FILE', text: 'configuration file (.yaml, .yml or .json)' });
  const image = docs.find((d) => d.path === 'image')!;
  t.equal(image.usage.length, 5, 'each form of image is a usage line');
  const main = docs.find((d) => d.path === '')!;
  t.match(main.title, /^blockgate - userspace block-storage gateway/);
  t.ok(main.blocks.some((b) => b.kind === 'section' && b.title === 'Environment' && b.items.some((i) => i.term === 'BLOCKGATE_TOKEN')));
  t.throws(() => parseHelp('x', 'no usage here\n'), /no Usage line/);
  t.throws(() => parseHelp('x', 'Usage: blockgate x\n\nOptions:\n  --ok   fine\n  bad option line   text\n'), /cannot read option "bad option line"/);
});

t.test('the man page covers every command and option and renders without warnings', async (t) => {
  const r = await runCli(['man']);
  t.equal(r.code, 0);
  const page = r.stdout;
  t.match(page, /^\.TH BLOCKGATE 1 "" "blockgate \d+\.\d+\.\d+" "User Commands"$/m);
  for (const doc of docs.filter((d) => d.path !== '')) {
    t.ok(page.includes(`.SS "blockgate ${doc.path.replace(/-/g, '\\-')}"`), `section for ${doc.path}`);
    for (const o of doc.options) t.ok(page.includes(`\\fB\\-\\-${o.long.replace(/-/g, '\\-')}\\fR`), `${doc.path} --${o.long}`);
  }
  for (const section of ['SYNOPSIS', 'DESCRIPTION', 'COMMANDS', 'ENVIRONMENT', 'FILES', 'EXIT STATUS', 'SEE ALSO']) t.match(page, new RegExp(`^\\.SH ${section}$`, 'm'));
  const file = join(dir, 'blockgate.1');
  writeFileSync(file, page);
  const groff = await runTool('groff', ['-man', '-ww', '-z', file]);
  t.equal(groff.stderr, '', 'groff has no warnings');
  const text = (await runTool('man', ['-l', '-Tutf8', file], { env: { MANWIDTH: '100' } })).stdout.replace(/.\x08/g, '');
  t.match(text, /blockgate image import FILE EXPORT \[--format FORMAT\]/);
  t.match(text, /BLOCKGATE_TOKEN_FILE\s+a file holding that token/);
});

t.test('bash completes commands, options, option values and file arguments', async (t) => {
  const script = join(dir, 'blockgate.bash');
  const r = await runCli(['completion', 'bash']);
  t.equal(r.code, 0);
  writeFileSync(script, r.stdout);
  t.equal((await runTool('bash', ['-n', script])).code, 0, 'the script parses');
  const files = join(dir, 'files');
  mkdirSync(join(files, 'sub'), { recursive: true });
  writeFileSync(join(files, 'disk.qcow2'), '');
  writeFileSync(join(files, 'disk.vmdk'), '');

  const withPackage = existsSync('/usr/share/bash-completion/bash_completion');
  for (const mode of withPackage ? ['plain', 'bash-completion'] : ['plain']) {
    const complete = async (line: string): Promise<string[]> => {
      const words = line.split(' ');
      const setup = mode === 'plain' ? '' : 'source /usr/share/bash-completion/bash_completion;';
      const program = `${setup} source ${script}; cd ${files}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; COMP_LINE='${line}'; COMP_POINT=${line.length}; _blockgate; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const out = (await runTool('bash', ['-c', program])).stdout;
      return out.split('\n').filter(Boolean).sort();
    };
    t.same(await complete('blockgate i'), ['image'], `${mode}: a command`);
    t.same(
      await complete('blockgate '),
      ['action', 'check-config', 'cluster', 'completion', 'config', 'devices', 'exports', 'image', 'man', 'paths', 'resync', 'serve', 'sessions', 'show-config', 'status', 'token'],
      `${mode}: every command`,
    );
    t.same(await complete('blockgate token '), ['rotate'], `${mode}: token rotate`);
    t.same(await complete('blockgate config '), ['apply', 'diff', 'history', 'rollback', 'show'], `${mode}: config subcommands`);
    t.same(await complete('blockgate cluster '), ['apply-config', 'clear-quarantine', 'status'], `${mode}: every form of cluster`);
    t.same(await complete('blockgate config apply --d'), ['--dry-run'], `${mode}: config apply's options`);
    t.same(await complete('blockgate status --c'), ['--cacert', '--check'], `${mode}: options of the member commands`);
    t.same(await complete('blockgate image '), ['cancel', 'export', 'import', 'jobs', 'watch'], `${mode}: subcommands`);
    t.same(await complete('blockgate image import --f'), ['--format'], `${mode}: an option`);
    t.same(await complete('blockgate image import --format '), ['qcow2', 'raw', 'vmdk'], `${mode}: an option's values from its help`);
    t.same(await complete('blockgate serve --log-level '), ['debug', 'error', 'fatal', 'info', 'silent', 'trace', 'warn'], `${mode}: log levels`);
    t.same(await complete('blockgate image import disk.'), ['disk.qcow2', 'disk.vmdk'], `${mode}: FILE is a file name`);
    t.same(await complete('blockgate image import --format raw disk.q'), ['disk.qcow2'], `${mode}: options and their values are skipped when counting arguments`);
    t.same(await complete('blockgate image import disk.qcow2 '), [], `${mode}: EXPORT is not a file`);
    t.same(await complete('blockgate serve --data-dir s'), ['sub'], `${mode}: DIR is a directory`);
    t.same(await complete('blockgate completion '), ['bash'], `${mode}: a literal argument`);
    t.same(await complete('blockgate --v'), ['--version'], `${mode}: blockgate's own options`);
  }
});
