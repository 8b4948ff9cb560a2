import { isIP } from 'node:net';
import { Type, type Static } from '@sinclair/typebox';

/** Who may connect: NBD TLS credentials and per-export access lists. */

export const CIDR_FORMAT = 'ip-or-cidr';

/** `10.0.0.5`, `10.0.0.0/8`, `fd00::1`, `fd00::/8`. */
export function isAddressOrBlock(v: string): boolean {
  const slash = v.indexOf('/');
  const family = isIP(slash < 0 ? v : v.slice(0, slash));
  if (family === 0) return false;
  if (slash < 0) return true;
  const bits = v.slice(slash + 1);
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

const Path = (description: string) => Type.String({ minLength: 1, description, 'x-problem': 'a path' });

export const NbdTls = Type.Object(
  {
    certificates: Type.Optional(
      Path('directory with server-cert.pem and server-key.pem (and ca-cert.pem to verify clients), as qemu and nbdkit lay it out; relative to the config file'),
    ),
    verifyClients: Type.Optional(Type.Boolean({ default: false, description: 'clients must present a certificate signed by ca-cert.pem' })),
    pskFile: Type.Optional(Path('pre-shared keys, one username:hexkey line per client (psktool format); relative to the config file')),
    require: Type.Optional(Type.Boolean({ default: false, description: 'every export needs TLS: before STARTTLS nothing else is answered' })),
  },
  { additionalProperties: false, description: 'TLS for NBD clients (STARTTLS): X.509 certificates, pre-shared keys or both' },
);

export const ExportAllow = Type.Object(
  {
    addresses: Type.Optional(
      Type.Array(Type.String({ format: CIDR_FORMAT, 'x-problem': 'an IP address or CIDR block', examples: ['10.0.0.0/8', '192.168.1.5'] }), {
        description: 'client addresses admitted (Unix-socket clients are admitted by file permissions)',
      }),
    ),
    identities: Type.Optional(
      Type.Array(Type.String({ minLength: 1, 'x-problem': 'a non-empty string' }), {
        description: 'TLS identities admitted: PSK usernames or client certificate DNs (CN=…,O=…); implies TLS',
      }),
    ),
  },
  { additionalProperties: false, description: 'NBD clients this export admits; absent: every client that reaches a listener' },
);

export type NbdTlsConfig = Static<typeof NbdTls>;
export type ExportAllowConfig = Static<typeof ExportAllow>;
