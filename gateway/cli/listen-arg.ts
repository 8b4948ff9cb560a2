import { hostPort, type ListenAddress } from '../../failover/config/schema/listen.js';
import { UsageError } from './exit.js';

/** `HOST:PORT`, `[V6]:PORT`, or a Unix socket path (anything with a `/`). */
export function parseListenArg(value: string, option: string): ListenAddress {
  if (value.includes('/')) return { socket: value };
  const m = hostPort(value);
  if (!m) throw new UsageError(`${option} ${JSON.stringify(value)}: expected HOST:PORT, [IPV6]:PORT or a socket path`);
  const port = Number(m.port);
  if (port > 65535) throw new UsageError(`${option} ${JSON.stringify(value)}: port must be from 0 to 65535`);
  return { host: m.host, port };
}
