import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { createSecureContext, DEFAULT_CIPHERS, TLSSocket, type SecureContext, type TLSSocketOptions } from 'node:tls';
import type { Logger } from '../../fabric/log.js';
import { PskKeys } from '../access/psk-file.js';

/**
 * TLS for NBD (the spec's STARTTLS): X.509 certificates from a directory laid out as qemu
 * and nbdkit expect (ca-cert.pem, server-cert.pem, server-key.pem), optionally verifying
 * client certificates against that CA, and pre-shared keys from a psktool file. Both may be
 * offered at once; the client's credentials decide which is used.
 *
 * Interoperability with GnuTLS (libnbd, qemu), measured: TLS 1.3 with a PSK negotiates
 * (TLS_CHACHA20_POLY1305_SHA256 with libnbd's priorities), and so does TLS 1.2 with the
 * ECDHE-PSK suites; the DHE-PSK ones find no shared cipher (Node has no DH parameters) and
 * plain PSK suites (no forward secrecy) are not offered.
 */

export interface NbdTlsConfig {
  /** Directory with server-cert.pem and server-key.pem, and ca-cert.pem to verify clients. */
  readonly certificates?: string;
  /** Ask clients for a certificate and refuse those the CA did not sign. */
  readonly verifyClients?: boolean;
  /** `username:hexkey` lines (psktool's format). */
  readonly pskFile?: string;
  /** Every export needs TLS: before STARTTLS nothing but STARTTLS and ABORT is answered. */
  readonly require?: boolean;
}

/** Who a client proved to be during the TLS handshake. */
export interface TlsPeer {
  /** The PSK username, or the verified client certificate's subject DN (RFC 4514, most specific first). */
  readonly identity?: string;
  readonly protocol: string;
  readonly cipher: string;
}

/** TLS 1.3 suites with SHA-256 first, the hash a PSK from the callback is bound to. */
const PSK_TLS13_FIRST = 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384';
/** TLS 1.2 suites added for PSK: forward secret ones only (ECDHE), as GnuTLS offers them. */
const PSK_CIPHERS = 'ECDHE-PSK-CHACHA20-POLY1305:ECDHE-PSK-AES256-CBC-SHA384:ECDHE-PSK-AES128-CBC-SHA256';

export class NbdTls {
  readonly forced: boolean;
  private readonly context: SecureContext;
  private readonly verifyClients: boolean;
  private readonly psk: PskKeys | undefined;
  /** PSK usernames by TLS socket, filled by the PSK callback during the handshake. */
  private readonly pskIdentities = new WeakMap<TLSSocket, string>();

  /** Reads every file now, so a missing or bad one stops start-up; throws an Error naming it. */
  constructor(config: NbdTlsConfig, log: Logger) {
    if (!config.certificates && !config.pskFile) throw new Error('nbd.tls needs certificates, pskFile or both');
    if (config.verifyClients && !config.certificates) throw new Error('nbd.tls.verifyClients needs certificates (with ca-cert.pem)');
    const dir = config.certificates;
    this.verifyClients = config.verifyClients === true;
    this.forced = config.require === true;
    this.psk = config.pskFile ? new PskKeys(config.pskFile, (problem) => log.warn({ problem }, 'PSK file unusable: keeping the keys read before')) : undefined;
    this.context = createSecureContext({
      minVersion: 'TLSv1.2',
      // OpenSSL refuses a PSK handshake that asks for a client certificate without one.
      sessionIdContext: 'blockgate-nbd',
      // OpenSSL binds an external PSK to SHA-256: with a certificate also on offer, a server
      // preferring a SHA-384 suite would answer a PSK client with its certificate instead.
      ...(this.psk ? { ciphers: `${PSK_TLS13_FIRST}:${DEFAULT_CIPHERS}:${PSK_CIPHERS}`, honorCipherOrder: true } : { ciphers: DEFAULT_CIPHERS }),
      ...(dir && { cert: pem(dir, 'server-cert.pem'), key: pem(dir, 'server-key.pem') }),
      ...(dir && this.verifyClients && { ca: pem(dir, 'ca-cert.pem') }),
    });
  }

  /**
   * Runs the server side of the handshake over a socket whose plaintext phase is over, and
   * resolves with the secure socket and who the client is. Rejects if the handshake fails
   * (the socket is then destroyed).
   */
  upgrade(raw: Socket): Promise<{ socket: TLSSocket; peer: TlsPeer }> {
    const options: TLSSocketOptions = {
      isServer: true,
      secureContext: this.context,
      requestCert: this.verifyClients,
      rejectUnauthorized: this.verifyClients,
      ...(this.psk && {
        pskCallback: (socket: TLSSocket, identity: string) => {
          const key = this.psk!.lookup(identity);
          if (key) this.pskIdentities.set(socket, identity);
          return key ?? null;
        },
      }),
    };
    const socket = new TLSSocket(raw, options);
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => {
        socket.destroy();
        reject(err);
      };
      socket.once('error', fail);
      socket.once('close', () => fail(new Error('connection closed during the TLS handshake')));
      socket.once('secure', () => {
        socket.off('error', fail);
        socket.removeAllListeners('close');
        const identity = this.pskIdentities.get(socket) ?? (this.verifyClients ? subjectOf(socket) : undefined);
        resolve({
          socket,
          peer: { ...(identity !== undefined && { identity }), protocol: socket.getProtocol() ?? 'unknown', cipher: socket.getCipher().name },
        });
      });
    });
  }
}

function pem(dir: string, name: string): Buffer {
  const path = join(dir, name);
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`${path}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
}

/**
 * The verified client certificate's subject as an RFC 4514 string, most specific first
 * (`CN=host1,O=Example,C=GB`), the form GnuTLS prints and qemu's authz lists use.
 */
function subjectOf(socket: TLSSocket): string | undefined {
  const cert = socket.getPeerX509Certificate() as X509Certificate | undefined;
  if (!cert) return undefined;
  return cert.subject
    .split('\n')
    .filter((rdn) => rdn !== '')
    .reverse()
    .map((rdn) => {
      const eq = rdn.indexOf('=');
      return `${rdn.slice(0, eq)}=${escapeDnValue(rdn.slice(eq + 1))}`;
    })
    .join(',');
}

function escapeDnValue(v: string): string {
  return v.replace(/([,+"\\<>;])/g, '\\$1').replace(/^([ #])/, '\\$1').replace(/ $/, '\\ ');
}
