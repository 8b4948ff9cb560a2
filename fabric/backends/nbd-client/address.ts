/**
 * Where an NBD server listens, as written in config: "host:port", "[v6]:port" or "unix:/path".
 * Turned into net.connect options.
 */
import type { NetConnectOpts } from 'node:net';

export type NbdAddress = { readonly host: string; readonly port: number } | { readonly path: string };

/** Parse an address; returns undefined when it is not one of the accepted forms. */
export function parseNbdAddress(text: string): NbdAddress | undefined {
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    return path === '' ? undefined : { path };
  }
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}

export function formatNbdAddress(address: NbdAddress): string {
  if ('path' in address) return `unix:${address.path}`;
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

export function connectOptions(address: NbdAddress): NetConnectOpts {
  return 'path' in address ? { path: address.path } : { host: address.host, port: address.port };
}
