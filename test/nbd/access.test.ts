/**
 * Per-export NBD access lists: client addresses (CIDR) and TLS identities (PSK usernames,
 * client certificate DNs). A client an export does not admit does not see it in the list
 * and gets NBD_REP_ERR_POLICY when it asks for it; the refusal is logged and counted, in
 * the member's Prometheus metrics too.
 */
import t from 'tap';
import { join } from 'node:path';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { logger } from '../../fabric/log.js';
import { NBD_OPT_GO, NBD_REP_ERR_POLICY, NBD_REP_ERR_UNKNOWN } from '../../fabric/protocols/nbd.js';
import { NbdAccess, type ExportRules } from '../../gateway/nbd/access.js';
import { NbdTls } from '../../gateway/nbd/tls.js';
import { runTool, tempDir } from '../helpers/clients.js';
import { infoRequest, RawNbdClient, startNbdServer } from '../helpers/nbd.js';
import { makePki, makePskFile, type Pki } from '../helpers/tls.js';
import { ensureBuilt, runCli, startMember } from '../helpers/blockgate-cli.js';
import { parseExposition, value } from '../helpers/prometheus.js';

const MiB = 1 << 20;
let pki: Pki;
let dir: string;
let pskFile: string;

t.before(async () => {
  dir = await tempDir(t, 'security-acl-');
  pki = makePki(dir, ['client1', 'client2']);
  pskFile = join(dir, 'keys.psk');
  makePskFile(pskFile, ['alice', 'bob']);
});

const nbdinfo = (...args: string[]) => runTool('nbdinfo', args, { allowFailure: true, timeoutMs: 30_000 });
const names = (stdout: string) => (JSON.parse(stdout) as { exports: { 'export-name': string }[] }).exports.map((e) => e['export-name']).sort();

t.test('addresses: an export admits only the clients its list names', async (t) => {
  const rules = new Map<string, ExportRules>([
    ['lan', { allow: { addresses: ['127.0.0.0/30'] } }],
    ['one', { allow: { addresses: ['127.0.0.2'] } }],
  ]);
  const nbd = await startNbdServer(
    ['lan', 'one', 'open'].map((name) => ({ name, device: new MemoryBackend({ name: `acl-${name}`, size: MiB }) })),
    { access: new NbdAccess(rules, false) },
  );
  t.teardown(() => nbd.stop());
  const from = async (address: string, exportName: string) => {
    const c = await RawNbdClient.open({ port: nbd.port, localAddress: address });
    c.sendOption(NBD_OPT_GO, infoRequest(exportName, []));
    const replies = await c.readOptionReplies(3 /* NBD_REP_INFO */);
    c.destroy();
    return replies.at(-1)!.type;
  };
  t.equal(await from('127.0.0.1', 'lan'), 1, '127.0.0.1 is in 127.0.0.0/30: ACK');
  t.equal(await from('127.0.0.1', 'one'), NBD_REP_ERR_POLICY, '127.0.0.1 may not use "one": NBD_REP_ERR_POLICY');
  t.equal(await from('127.0.0.2', 'one'), 1, '127.0.0.2 may');
  t.equal(await from('127.0.0.5', 'lan'), NBD_REP_ERR_POLICY, '127.0.0.5 is outside 127.0.0.0/30');
  t.equal(await from('127.0.0.5', 'nope'), NBD_REP_ERR_UNKNOWN, 'an export that does not exist is still unknown');
  t.equal(nbd.server.refusals.count('nbd', 'not-allowed'), 2, 'each refusal counted');

  const listed = await nbdinfo('--list', '--json', nbd.uri(''));
  t.same(names(listed.stdout), ['lan', 'open'], 'nbdinfo from 127.0.0.1 lists what it may use');
  t.equal((await nbdinfo(nbd.uri('one'))).code === 0, false, 'and cannot open the other');
  t.equal((await nbdinfo(nbd.unixUri('one'))).code, 0, 'a Unix-socket client is admitted by the socket file permissions');
});

t.test('TLS identities: PSK usernames and certificate DNs', async (t) => {
  const tls = new NbdTls({ certificates: pki.server, verifyClients: true, pskFile }, logger('test'));
  const rules = new Map<string, ExportRules>([
    ['alices', { allow: { identities: ['alice', pki.dn('client1')] } }],
    ['bobs', { allow: { identities: ['bob'] } }],
  ]);
  const nbd = await startNbdServer(
    ['alices', 'bobs'].map((name) => ({ name, device: new MemoryBackend({ name: `acl-${name}`, size: MiB }) })),
    { tls, access: new NbdAccess(rules, false) },
  );
  t.teardown(() => nbd.stop());
  const psk = (user: string, name: string) => `nbds://${user}@127.0.0.1:${nbd.port}/${name}?tls-psk-file=${pskFile}`;
  const cert = (client: string, name: string) => `nbds://127.0.0.1:${nbd.port}/${name}?tls-certificates=${pki.client(client)}`;
  t.equal((await nbdinfo(psk('alice', 'alices'))).code, 0, 'alice opens hers');
  t.not((await nbdinfo(psk('alice', 'bobs'))).code, 0, "alice cannot open bob's");
  t.equal((await nbdinfo(psk('bob', 'bobs'))).code, 0, 'bob opens his');
  t.equal((await nbdinfo(cert('client1', 'alices'))).code, 0, `certificate ${pki.dn('client1')} is admitted`);
  t.not((await nbdinfo(cert('client2', 'alices'))).code, 0, 'client2 is not');
  t.same(names((await nbdinfo('--list', '--json', psk('bob', ''))).stdout), ['bobs'], 'bob sees only his');
  t.same(names((await nbdinfo('--list', '--json', nbd.uri(''))).stdout), [], 'without TLS nothing is listed');
  // nbdinfo asks with NBD_OPT_INFO, then NBD_OPT_GO: each refusal is counted.
  t.ok(nbd.server.refusals.count('nbd', 'not-allowed') >= 2, 'refusals counted');
});

t.test('the member: access lists from the config, refusals in /metrics, check-config shows them', async (t) => {
  ensureBuilt();
  const work = mkdtempSync(join(tmpdir(), 'security-acl-member-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const config = join(work, 'member.yaml');
  writeFileSync(
    config,
    [
      'backends: [{name: d, type: memory, size: 1MiB}, {name: e, type: memory, size: 1MiB}]',
      'exports:',
      '  - {name: d, device: d, allow: {addresses: ["127.0.0.2"]}}',
      '  - {name: e, device: e, requireTls: true, allow: {identities: [alice]}}',
      'nbd:',
      '  listen: ["127.0.0.1:0"]',
      `  tls: {pskFile: ${pskFile}}`,
      '',
    ].join('\n'),
  );
  const check = await runCli(['check-config', config]);
  t.equal(check.code, 0, check.stderr);
  t.match(check.stdout, /d -> d \(read-write\) \[NBD: from 127\.0\.0\.2\]/);
  t.match(check.stdout, /e -> e \(read-write\) \[NBD: TLS only; for "alice"\]/);
  t.match(check.stdout, /nbd tls: offered; PSK keys in /);

  const member = startMember(t, ['--config', config, '--data-dir', join(work, 'data')]);
  const listen = await member.ready();
  const port = listen.nbd![0]!.split(':')[1];
  t.not((await nbdinfo(`nbd://127.0.0.1:${port}/d`)).code, 0, '127.0.0.1 may not use d');
  t.equal((await nbdinfo(`nbds://alice@127.0.0.1:${port}/e?tls-psk-file=${pskFile}`)).code, 0, 'alice over TLS uses e');
  t.not((await nbdinfo(`nbds://bob@127.0.0.1:${port}/e?tls-psk-file=${pskFile}`)).code, 0, 'bob may not');
  const metrics = parseExposition(await (await fetch(`http://${listen.api![0]}/metrics`)).text());
  t.ok(value(metrics, 'blockgate_connections_refused_total', { protocol: 'nbd', reason: 'not-allowed' }) >= 2, 'both refusals counted');
  t.ok(member.lines.some((l) => l.msg === 'client refused' && l.reason === 'not-allowed' && l.export === 'd'), 'and logged with the export');

  writeFileSync(config, 'backends: [{name: d, type: memory, size: 1MiB}]\nexports: [{name: d, device: d, allow: {addresses: ["10.0.0.0/33"]}}]\n');
  const bad = await runCli(['check-config', config]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /exports\[0\]\.allow\.addresses\[0\]: must be an IP address or CIDR block/);
  writeFileSync(config, 'backends: [{name: d, type: memory, size: 1MiB}]\nexports: [{name: d, device: d, requireTls: true}]\n');
  const noTls = await runCli(['check-config', config]);
  t.equal(noTls.code, 2);
  t.match(noTls.stderr, /exports\[0\]\.requireTls: needs nbd\.tls/);
});
