import { Type, type Static } from '@sinclair/typebox';

/** Where a front end listens: `"HOST:PORT"`, `"[V6]:PORT"`, `{host, port}` or `{socket}`. */

export const HOST_PORT_FORMAT = 'host-port';

/** A TCP port; 0 asks the kernel for a free one (tests, benchmarks). */
export const Port = Type.Integer({ minimum: 0, maximum: 65535, 'x-problem': 'a port number from 0 to 65535' });

export const NonEmpty = Type.String({ minLength: 1, 'x-problem': 'a non-empty string' });

export const TcpListen = Type.Object({ host: NonEmpty, port: Port }, { additionalProperties: false });
export const UnixListen = Type.Object({ socket: NonEmpty }, { additionalProperties: false });

export const Listen = Type.Union([
  Type.String({ format: HOST_PORT_FORMAT, 'x-problem': 'HOST:PORT, [IPV6]:PORT or a mapping', examples: ['127.0.0.1:10809', '[::1]:10809'] }),
  TcpListen,
  UnixListen,
]);

export const ListenList = Type.Array(Listen, { description: 'listeners: "HOST:PORT", {host, port} or {socket: PATH}' });

export type TcpListen = Static<typeof TcpListen>;
export type UnixListen = Static<typeof UnixListen>;
/** A listener as the running configuration holds it (strings are turned into mappings). */
export type ListenAddress = TcpListen | UnixListen;

/** The NBD port IANA assigned; used when a config has no `nbd` section. */
export const NBD_DEFAULT_PORT = 10809;
export const DEFAULT_NBD_LISTEN: readonly ListenAddress[] = [{ host: '127.0.0.1', port: NBD_DEFAULT_PORT }];

/** `HOST:PORT` or `[V6]:PORT`, as the CLI's --nbd/--iscsi/--api take it; undefined if not that shape. */
export function hostPort(v: string): { host: string; port: string } | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(v) ?? /^([^:/]+):(\d+)$/.exec(v);
  return m ? { host: m[1]!, port: m[2]! } : undefined;
}

/** The `host-port` format: HOST:PORT with a port from 0 to 65535. */
export function isHostPort(v: string): boolean {
  const hp = hostPort(v);
  return hp !== undefined && Number(hp.port) <= 65535;
}

export function toListenAddress(v: Static<typeof Listen>): ListenAddress {
  if (typeof v !== 'string') return v;
  const hp = hostPort(v)!;
  return { host: hp.host, port: Number(hp.port) };
}

export function formatListen(a: ListenAddress): string {
  if ('socket' in a) return `unix:${a.socket}`;
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
