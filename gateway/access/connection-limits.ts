import type { Socket } from 'node:net';

/**
 * How many connections a front end accepts: per listener, and per client address across
 * the front end's listeners (Unix-socket clients have no address and count only per
 * listener). Past either, a new connection is closed as soon as it is accepted.
 */
export interface ConnectionLimits {
  readonly maxConnections: number;
  readonly maxConnectionsPerClient: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = Object.freeze({ maxConnections: 1024, maxConnectionsPerClient: 256 });

/** Configured limits over the defaults (a config section leaves out what it does not change). */
export function connectionLimits(configured: { readonly maxConnections?: number; readonly maxConnectionsPerClient?: number }): ConnectionLimits {
  return {
    maxConnections: configured.maxConnections ?? DEFAULT_CONNECTION_LIMITS.maxConnections,
    maxConnectionsPerClient: configured.maxConnectionsPerClient ?? DEFAULT_CONNECTION_LIMITS.maxConnectionsPerClient,
  };
}

export type LimitVerdict = { readonly release: () => void } | { readonly refused: 'connection-limit' | 'client-limit' };

export class ConnectionLimiter {
  private readonly perListener = new Map<string, number>();
  private readonly perClient = new Map<string, number>();

  constructor(readonly limits: ConnectionLimits = DEFAULT_CONNECTION_LIMITS) {}

  /** Take a place for this connection; `release` gives it back (call it once, on close). */
  admit(listener: string, socket: Socket): LimitVerdict {
    const client = socket.remoteAddress;
    const onListener = this.perListener.get(listener) ?? 0;
    if (onListener >= this.limits.maxConnections) return { refused: 'connection-limit' };
    const fromClient = client === undefined ? 0 : (this.perClient.get(client) ?? 0);
    if (client !== undefined && fromClient >= this.limits.maxConnectionsPerClient) return { refused: 'client-limit' };
    this.perListener.set(listener, onListener + 1);
    if (client !== undefined) this.perClient.set(client, fromClient + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        decrement(this.perListener, listener);
        if (client !== undefined) decrement(this.perClient, client);
      },
    };
  }
}

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 1) - 1;
  if (n === 0) map.delete(key);
  else map.set(key, n);
}
