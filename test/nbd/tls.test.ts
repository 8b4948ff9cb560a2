/**
 * NBD over TLS (STARTTLS) against real clients: libnbd (nbdinfo, nbdsh) and qemu, with
 * X.509 certificates (optionally verifying the client's) and with pre-shared keys in the
 * psktool file format; exports that need TLS are neither listed nor opened before it; a
 * server that requires TLS answers nothing else first; plaintext smuggled behind STARTTLS
 * ends the connection; and plaintext connections keep the receive-arena fast path.
 */
import t, { type Test } from 'tap';
import { connect as tlsConnect } from 'node:tls';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { logger } from '../../fabric/log.js';
import {
  NBD_FLAG_SEND_DF,
  NBD_OPT_GO,
  NBD_OPT_LIST,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_INFO,
} from '../../fabric/protocols/nbd.js';
import { receivePathCounts } from '../../fabric/socket-receiver.js';
import { NbdAccess } from '../../gateway/nbd/access.js';
import { NbdTls, type NbdTlsConfig } from '../../gateway/nbd/tls.js';
import { runTool, tempDir } from '../helpers/clients.js';
import { infoRequest, RawNbdClient, startNbdServer, type RunningNbd } from '../helpers/nbd.js';
import { makePki, makePskFile, type Pki } from '../helpers/tls.js';

const MiB = 1 << 20;
const log = logger('test');

let pki: Pki;
/** Another CA, trusted by no one here. */
let stranger: Pki;
let dir: string;
let keys: Map<string, string>;
let pskFile: string;

t.before(async () => {
  dir = await tempDir(t, 'security-tls-');
  pki = makePki(dir, ['client1', 'client2']);
  stranger = makePki(join(dir, 'stranger'), ['client1']);
  pskFile = join(dir, 'keys.psk');
  keys = makePskFile(pskFile, ['alice', 'bob']);
});

async function server(t: Test, tls: NbdTlsConfig, exports: { name: string; requireTls?: boolean }[] = [{ name: 'disk' }]): Promise<RunningNbd> {
  const nbdTls = new NbdTls(tls, log);
  const rules = new Map(exports.filter((e) => e.requireTls).map((e) => [e.name, { requireTls: true }]));
  const nbd = await startNbdServer(
    exports.map((e, i) => ({ name: e.name, device: new MemoryBackend({ name: `tls-${e.name}-${i}`, size: MiB }) })),
    { tls: nbdTls, access: new NbdAccess(rules, nbdTls.forced) },
  );
  t.teardown(() => nbd.stop());
  return nbd;
}

const nbdinfo = (...args: string[]) => runTool('nbdinfo', args, { allowFailure: true, timeoutMs: 30_000 });
const x509 = (nbd: RunningNbd, certs: string, name = 'disk') => `nbds://127.0.0.1:${nbd.port}/${name}?tls-certificates=${certs}`;
const psk = (nbd: RunningNbd, user: string, file = pskFile, name = 'disk') => `nbds://${user}@127.0.0.1:${nbd.port}/${name}?tls-psk-file=${file}`;

t.test('X.509: nbdinfo and qemu-img over TLS; plaintext still served when TLS is optional', async (t) => {
  const nbd = await server(t, { certificates: pki.server });
  const over = await nbdinfo('--json', x509(nbd, pki.anonymous));
  t.equal(over.code, 0, over.stderr);
  t.match(JSON.parse(over.stdout), { TLS: true, exports: [{ 'export-name': 'disk', 'export-size': MiB }] });
  const plain = await nbdinfo('--json', nbd.uri('disk'));
  t.equal(plain.code, 0, plain.stderr);
  t.match(JSON.parse(plain.stdout), { TLS: false });
  const qemu = await runTool('qemu-img', [
    'info',
    '--output=json',
    '--object',
    `tls-creds-x509,id=tls0,endpoint=client,dir=${pki.anonymous}`,
    '--image-opts',
    `driver=nbd,host=127.0.0.1,port=${nbd.port},export=disk,tls-creds=tls0`,
  ]);
  t.equal(JSON.parse(qemu.stdout)['virtual-size'], MiB, 'qemu-img with tls-creds-x509');
  const wrongCa = await nbdinfo(x509(nbd, stranger.anonymous));
  t.not(wrongCa.code, 0, 'a client trusting another CA gives up');
});

t.test('X.509 with verifyClients: a client certificate from the CA is required', async (t) => {
  const nbd = await server(t, { certificates: pki.server, verifyClients: true });
  const withCert = await nbdinfo('--json', x509(nbd, pki.client('client1')));
  t.equal(withCert.code, 0, withCert.stderr);
  const without = await nbdinfo(x509(nbd, pki.anonymous));
  t.not(without.code, 0, 'no client certificate: refused');
  t.equal(nbd.server.refusals.count('nbd', 'tls-failed'), 1, 'counted as a failed TLS handshake');
  const qemu = await runTool('qemu-img', [
    'info',
    '--object',
    `tls-creds-x509,id=tls0,endpoint=client,dir=${pki.client('client2')}`,
    '--image-opts',
    `driver=nbd,host=127.0.0.1,port=${nbd.port},export=disk,tls-creds=tls0`,
  ]);
  t.match(qemu.stdout, /virtual size: 1 MiB/, 'qemu-img with its own client certificate');
});

t.test('pre-shared keys: psktool files as nbdkit and qemu read them', async (t) => {
  const nbd = await server(t, { pskFile });
  const alice = await nbdinfo('--json', psk(nbd, 'alice'));
  t.equal(alice.code, 0, alice.stderr);
  t.match(JSON.parse(alice.stdout), { TLS: true });
  const forged = join(dir, 'forged.psk');
  writeFileSync(forged, `alice:${'00'.repeat(32)}\n`);
  t.not((await nbdinfo(psk(nbd, 'alice', forged))).code, 0, 'the wrong key: refused');
  const carol = join(dir, 'carol.psk');
  writeFileSync(carol, `carol:${keys.get('alice')}\n`);
  t.not((await nbdinfo(psk(nbd, 'carol', carol))).code, 0, 'an unknown user: refused');
  t.equal(nbd.server.refusals.count('nbd', 'tls-failed'), 2);

  const qemuDir = join(dir, 'qemu-psk');
  await runTool('mkdir', ['-p', qemuDir]);
  writeFileSync(join(qemuDir, 'keys.psk'), readFileSync(pskFile));
  const qemu = await runTool('qemu-img', [
    'info',
    '--object',
    `tls-creds-psk,id=tls0,endpoint=client,dir=${qemuDir},username=bob`,
    '--image-opts',
    `driver=nbd,host=127.0.0.1,port=${nbd.port},export=disk,tls-creds=tls0`,
  ]);
  t.match(qemu.stdout, /virtual size: 1 MiB/, 'qemu-img with tls-creds-psk');

  // Keys are read again at each handshake: a new client works without a restart.
  writeFileSync(pskFile, `${readFileSync(pskFile, 'utf8')}dave:${'ab'.repeat(32)}\n`);
  const dave = join(dir, 'dave.psk');
  writeFileSync(dave, `dave:${'ab'.repeat(32)}\n`);
  t.equal((await nbdinfo(psk(nbd, 'dave', dave))).code, 0, 'a key added to the file is used at once');
});

t.test('certificates and keys together; nbdsh writes and reads over TLS', async (t) => {
  const nbd = await server(t, { certificates: pki.server, pskFile, verifyClients: true });
  t.equal((await nbdinfo(x509(nbd, pki.client('client1')))).code, 0, 'certificate client');
  t.equal((await nbdinfo(psk(nbd, 'alice'))).code, 0, 'PSK client');
  const script = [
    'import nbd',
    'h = nbd.NBD()',
    'h.set_uri_allow_local_file(True)',
    `h.connect_uri(${JSON.stringify(psk(nbd, 'bob'))})`,
    "h.pwrite(b'\\x5a' * 4096, 8192)",
    "assert h.pread(4096, 8192) == b'\\x5a' * 4096",
    "print('ok', h.get_tls_negotiated())",
  ].join('\n');
  const sh = await runTool('/usr/bin/python3', ['-c', script]);
  t.match(sh.stdout, /ok True/);
});

t.test('an export that needs TLS is not listed, nor opened, before TLS', async (t) => {
  const nbd = await server(t, { certificates: pki.server }, [{ name: 'open' }, { name: 'secret', requireTls: true }]);
  const plain = await nbdinfo('--list', '--json', nbd.uri(''));
  t.same(JSON.parse(plain.stdout).exports.map((e: { 'export-name': string }) => e['export-name']), ['open'], 'plaintext list: only "open"');
  const tls = await nbdinfo('--list', '--json', x509(nbd, pki.anonymous, ''));
  t.same(JSON.parse(tls.stdout).exports.map((e: { 'export-name': string }) => e['export-name']).sort(), ['open', 'secret'], 'over TLS: both');
  const raw = await RawNbdClient.open({ port: nbd.port });
  t.teardown(() => raw.destroy());
  raw.sendOption(NBD_OPT_GO, infoRequest('secret', []));
  t.equal((await raw.readOptionReply()).type, NBD_REP_ERR_TLS_REQD, 'GO before TLS: NBD_REP_ERR_TLS_REQD');
  t.equal(nbd.server.refusals.count('nbd', 'tls-required'), 1, 'counted');
  const plainOpen = await nbdinfo(nbd.uri('secret'));
  t.not(plainOpen.code, 0, 'nbdinfo without TLS cannot open it');
});

t.test('a server that requires TLS answers nothing but STARTTLS before it', async (t) => {
  const nbd = await server(t, { certificates: pki.server, require: true });
  const raw = await RawNbdClient.open({ port: nbd.port });
  t.teardown(() => raw.destroy());
  raw.sendOption(NBD_OPT_LIST);
  t.equal((await raw.readOptionReply()).type, NBD_REP_ERR_TLS_REQD, 'LIST: NBD_REP_ERR_TLS_REQD, no export named');
  t.not((await nbdinfo('--list', nbd.uri(''))).code, 0, 'nbdinfo without TLS fails');
  t.equal((await nbdinfo('--list', x509(nbd, pki.anonymous, ''))).code, 0, 'with TLS it lists');
});

t.test('bytes sent behind STARTTLS, before the handshake, end the connection', async (t) => {
  const nbd = await server(t, { certificates: pki.server });
  const raw = await RawNbdClient.open({ port: nbd.port });
  t.teardown(() => raw.destroy());
  const header = Buffer.alloc(16);
  header.writeBigUInt64BE(0x49484156454f5054n, 0);
  header.writeUInt32BE(NBD_OPT_STARTTLS, 8);
  const smuggled = Buffer.alloc(16);
  smuggled.writeBigUInt64BE(0x49484156454f5054n, 0);
  smuggled.writeUInt32BE(NBD_OPT_STRUCTURED_REPLY, 8);
  raw.write(Buffer.concat([header, smuggled]));
  await raw.closed;
  t.pass('dropped');
});

t.test('nothing negotiated in plaintext carries over into TLS', async (t) => {
  const nbd = await server(t, { certificates: pki.server });
  const raw = await RawNbdClient.open({ port: nbd.port });
  raw.sendOption(NBD_OPT_STRUCTURED_REPLY);
  t.equal((await raw.readOptionReply()).type, NBD_REP_ACK, 'structured replies in plaintext');
  raw.sendOption(NBD_OPT_STARTTLS);
  t.equal((await raw.readOptionReply()).type, NBD_REP_ACK, 'STARTTLS');
  const secure = tlsConnect({ socket: raw.socket, ca: readFileSync(join(pki.anonymous, 'ca-cert.pem')), servername: 'localhost' });
  t.teardown(() => secure.destroy());
  await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
  const replies: Buffer[] = [];
  let buffered = Buffer.alloc(0);
  secure.on('data', (d: Buffer) => (buffered = Buffer.concat([buffered, d])));
  const option = (type: number, data: Buffer = Buffer.alloc(0)) => {
    const h = Buffer.alloc(16);
    h.writeBigUInt64BE(0x49484156454f5054n, 0);
    h.writeUInt32BE(type, 8);
    h.writeUInt32BE(data.length, 12);
    secure.write(Buffer.concat([h, data]));
  };
  const reply = async () => {
    while (buffered.length < 20 || buffered.length < 20 + buffered.readUInt32BE(16)) await new Promise((r) => setTimeout(r, 5));
    const len = buffered.readUInt32BE(16);
    const r = buffered.subarray(0, 20 + len);
    buffered = buffered.subarray(20 + len);
    replies.push(r);
    return { type: r.readUInt32BE(12), data: r.subarray(20) };
  };
  option(NBD_OPT_GO, infoRequest('disk', []));
  let info;
  for (let r = await reply(); ; r = await reply()) {
    if (r.type === NBD_REP_INFO && r.data.readUInt16BE(0) === 0) info = r;
    if (r.type !== NBD_REP_INFO) {
      t.equal(r.type, NBD_REP_ACK);
      break;
    }
  }
  t.equal(info!.data.readUInt16BE(10) & NBD_FLAG_SEND_DF, 0, 'no DF flag: structured replies were not carried into TLS');
});

t.test('plaintext connections to a TLS-capable server keep the receive arenas', async (t) => {
  const nbd = await server(t, { certificates: pki.server });
  const before = { ...receivePathCounts };
  t.equal((await nbdinfo(nbd.uri('disk'))).code, 0);
  t.equal(receivePathCounts.arenas - before.arenas, 1, 'the plaintext connection reads into arenas');
  t.equal((await nbdinfo(x509(nbd, pki.anonymous))).code, 0);
  t.equal(receivePathCounts['data-events'] - before['data-events'], 1, "the TLS one reads decrypted 'data' events");
});

t.test('a bad PSK file stops start-up, naming the line but never a key', async (t) => {
  const bad = join(dir, 'bad.psk');
  writeFileSync(bad, `alice:${keys.get('alice')}\nbob:${'12'.repeat(5)}\n`);
  t.throws(() => new NbdTls({ pskFile: bad }, log), /bad\.psk, line 2: the key of "bob" is shorter than 16 bytes/);
  try {
    new NbdTls({ pskFile: bad }, log);
  } catch (err) {
    t.notMatch(String(err), keys.get('alice')!, 'no key in the message');
  }
  t.throws(() => new NbdTls({ certificates: join(dir, 'nowhere') }, log), /server-cert\.pem: ENOENT/);
});
