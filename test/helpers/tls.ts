/**
 * TLS material for tests, made with openssl each run: a CA, a server certificate for
 * 127.0.0.1/localhost, client certificates, laid out in the directories qemu, nbdkit and
 * libnbd read (ca-cert.pem, server-cert.pem, server-key.pem / client-cert.pem,
 * client-key.pem), and psktool-format key files.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, copyFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

function openssl(cwd: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function key(dir: string, name: string): void {
  openssl(dir, 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name);
}

/** Sign `name`-key.pem's request with the CA; `extensions` is an openssl extension section body. */
function issue(dir: string, name: string, subject: string, extensions: string): void {
  key(dir, `${name}-key.pem`);
  openssl(dir, 'req', '-new', '-key', `${name}-key.pem`, '-subj', subject, '-out', `${name}.csr`);
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca-cert.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}-cert.pem`);
}

export interface Pki {
  /** ca-cert.pem, server-cert.pem, server-key.pem: the server's directory. */
  readonly server: string;
  /** ca-cert.pem, client-cert.pem, client-key.pem for each client, by name. */
  client(name: string): string;
  /** The subject DN of a client's certificate as blockgate names it (most specific first). */
  dn(name: string): string;
  /** A directory with only ca-cert.pem: a client that checks the server but has no certificate. */
  readonly anonymous: string;
}

export function makePki(dir: string, clients: readonly string[] = ['client1']): Pki {
  const ca = join(dir, 'ca');
  mkdirSync(ca, { recursive: true });
  key(ca, 'ca-key.pem');
  openssl(ca, 'req', '-x509', '-new', '-key', 'ca-key.pem', '-subj', '/O=blockgate test/CN=test CA', '-days', '2', '-out', 'ca-cert.pem');
  issue(ca, 'server', '/O=blockgate test/CN=localhost', 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n');
  const server = join(dir, 'server');
  const anonymous = join(dir, 'anonymous');
  for (const d of [server, anonymous]) mkdirSync(d);
  copyFileSync(join(ca, 'ca-cert.pem'), join(server, 'ca-cert.pem'));
  copyFileSync(join(ca, 'server-cert.pem'), join(server, 'server-cert.pem'));
  copyFileSync(join(ca, 'server-key.pem'), join(server, 'server-key.pem'));
  copyFileSync(join(ca, 'ca-cert.pem'), join(anonymous, 'ca-cert.pem'));
  for (const name of clients) {
    issue(ca, name, `/C=GB/O=blockgate test/CN=${name}`, 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n');
    const d = join(dir, name);
    mkdirSync(d);
    copyFileSync(join(ca, 'ca-cert.pem'), join(d, 'ca-cert.pem'));
    copyFileSync(join(ca, `${name}-cert.pem`), join(d, 'client-cert.pem'));
    copyFileSync(join(ca, `${name}-key.pem`), join(d, 'client-key.pem'));
  }
  return { server, anonymous, client: (name) => join(dir, name), dn: (name) => `CN=${name},O=blockgate test,C=GB` };
}

/** A psktool-format file: `user:hexkey` per user, with fresh 32-byte keys; returns the keys too. */
export function makePskFile(path: string, users: readonly string[]): Map<string, string> {
  const keys = new Map(users.map((u) => [u, randomBytes(32).toString('hex')] as const));
  writeFileSync(path, [...keys].map(([u, k]) => `${u}:${k}\n`).join(''), { mode: 0o600 });
  return keys;
}
