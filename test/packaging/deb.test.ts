/**
 * The Debian package: built with debhelper from the tree, lintian clean (errors and warnings;
 * the few overrides are explained in packaging/debian/blockgate.lintian-overrides), holding
 * the app with production dependencies only, a Node.js 20 runtime that runs it, the hardened
 * unit with reload mapped to SIGHUP, the system user, the config, and the man page and bash
 * completion generated from the CLI's help texts.
 */
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ensureBuilt, runCli } from '../helpers/blockgate-cli.js';
import { runTool } from '../helpers/clients.js';
import { cachedArtifact } from '../helpers/image-cache.js';

t.setTimeout(40 * 60_000);
ensureBuilt();
const dir = mkdtempSync(join(tmpdir(), 'blockgate-deb-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('the .deb', async (t) => {
  const deb = await cachedArtifact('packaging/build-deb.sh');
  const field = async (name: string): Promise<string> => (await runTool('dpkg-deb', ['-f', deb, name])).stdout.trim();
  t.equal(await field('Package'), 'blockgate');
  t.equal(await field('Architecture'), 'amd64');
  t.match(await field('Depends'), /libc6 \(>= [\d.]+\)/, 'shared-library dependencies computed by dh_shlibdeps');
  t.match(await field('Recommends'), /qemu-utils/, 'qemu-img for image import/export');

  const root = join(dir, 'root');
  await runTool('dpkg-deb', ['-x', deb, root]);
  const control = join(dir, 'control');
  await runTool('dpkg-deb', ['-e', deb, control]);

  await t.test('runtime and app: Node.js 20 runs the packaged CLI with production dependencies only', async (t) => {
    const node = join(root, 'usr/lib/blockgate/node/bin/node');
    t.match((await runTool(node, ['--version'])).stdout, /^v20\./);
    const cli = join(root, 'usr/lib/blockgate/dist/gateway/cli.js');
    t.match((await runTool(node, [cli, '--version'])).stdout, /^blockgate \d+\.\d+\.\d+/);
    const check = await runTool(node, [cli, 'check-config', join(root, 'etc/blockgate/blockgate.yaml')]);
    t.match(check.stdout, /configuration OK/, 'the shipped configuration is valid');
    t.match(readFileSync(join(root, 'usr/bin/blockgate'), 'utf8'), /exec \/usr\/lib\/blockgate\/node\/bin\/node \/usr\/lib\/blockgate\/dist\/gateway\/cli\.js "\$@"/);
    const modules = join(root, 'usr/lib/blockgate/node_modules');
    for (const dep of ['pino', 'lmdb', 'yaml', 'cli-progress']) t.ok(existsSync(join(modules, dep)), `production dependency ${dep}`);
    for (const dev of ['tap', 'typescript', '@types/cli-progress']) t.notOk(existsSync(join(modules, dev)), `no development package ${dev}`);
  });

  await t.test('service: hardened unit, reload is SIGHUP, system user, conffile', async (t) => {
    const unit = readFileSync(join(root, 'lib/systemd/system/blockgate.service'), 'utf8');
    for (const line of [
      'User=blockgate',
      'ExecStart=/usr/bin/blockgate serve --config /etc/blockgate/blockgate.yaml --data-dir /var/lib/blockgate',
      'ExecReload=/bin/kill -HUP $MAINPID',
      'StateDirectory=blockgate',
      'ConfigurationDirectory=blockgate',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'CapabilityBoundingSet=CAP_NET_BIND_SERVICE',
      'AmbientCapabilities=CAP_NET_BIND_SERVICE',
      'SystemCallFilter=@system-service',
    ]) {
      t.ok(unit.split('\n').includes(line), line);
    }
    const verify = await runTool('systemd-analyze', ['verify', '--man=no', join(root, 'lib/systemd/system/blockgate.service')], { allowFailure: true });
    t.notMatch(verify.stderr, /Unknown (key|section)|Invalid|Failed to parse/i, `systemd-analyze verify: ${verify.stderr}`);
    t.match(readFileSync(join(root, 'usr/lib/sysusers.d/blockgate.conf'), 'utf8'), /^u blockgate - ".*" \/var\/lib\/blockgate$/m);
    t.match(readFileSync(join(control, 'postinst'), 'utf8'), /systemd-sysusers/, 'the user is created on install');
    t.match(readFileSync(join(control, 'postinst'), 'utf8'), /deb-systemd-helper enable 'blockgate.service'/, 'the service is enabled');
    t.equal(readFileSync(join(control, 'conffiles'), 'utf8').trim(), '/etc/blockgate/blockgate.yaml');
  });

  await t.test('man page and completion are the ones the CLI generates from its help texts', async (t) => {
    const man = gunzipSync(readFileSync(join(root, 'usr/share/man/man1/blockgate.1.gz'))).toString('utf8');
    t.equal(man, (await runCli(['man'])).stdout);
    const completion = readFileSync(join(root, 'usr/share/bash-completion/completions/blockgate'), 'utf8');
    t.equal(completion, (await runCli(['completion', 'bash'])).stdout);
  });

  await t.test('lintian: no errors, no warnings', async (t) => {
    const lint = await runTool('lintian', ['--fail-on', 'error,warning', '--no-tag-display-limit', deb], { timeoutMs: 20 * 60_000, allowFailure: true });
    t.equal(lint.code, 0, lint.stdout.slice(-4000));
    t.notMatch(lint.stdout, /^[EW]: /m);
  });
});
