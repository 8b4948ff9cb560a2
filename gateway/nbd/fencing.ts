/**
 * Fencing tokens at an NBD server (the blockgate extension NBD_OPT_BLOCKGATE_FENCE, see
 * fabric/protocols/nbd.ts). The hazard: a client that was paused (a stale cluster Primary) or
 * a path that hung (a stopped relay, a congested link) can deliver writes long after another
 * client or path took over and wrote newer data to the same blocks; executed then, they would
 * overwrite the newer data. So each fenced connection carries a token, the server keeps the
 * newest token seen per export, and a connection whose token is older than that is refused
 * every request — checked when each request is parsed, so requests that were already queued
 * in its socket when the newer token arrived are refused too. Requests handed to the device
 * before the newer token arrived are not recalled: the newer client's own writes come after
 * them in the server's order, which is the order the disk keeps.
 *
 * Tokens (fabric/fencing.ts) come from the client: the set's arbitration fencing token as the
 * term for a cluster Primary, a growing per-device generation for a multipath device's paths.
 * Equal tokens are peers (the several connections of one client, the active paths of an
 * Active-Active device). Connections that did not negotiate the extension are not judged.
 */
import { compareTokens, formatToken, type FenceToken } from '../../fabric/fencing.js';

const ZERO: FenceToken = Object.freeze({ term: 0, generation: 0 });

/**
 * Where a registry keeps the newest token of each export across restarts. Without it a
 * restarted server would know no token, and a deposed client reconnecting before the current
 * one would be let in again.
 */
export interface FenceMemory {
  load(): Iterable<readonly [string, FenceToken]>;
  /** Durable when it returns: the token is admitted only after. */
  save(exportName: string, token: FenceToken): void;
}

export class FenceRegistry {
  private readonly newest = new Map<string, FenceToken>();

  /**
   * `required`: a client that presents no token is refused every export (a shared-nothing
   * replica's server: only a set's Primary writes there, and an unfenced writer could never
   * be told it was deposed). `memory`: where the newest tokens outlive the process.
   */
  constructor(
    readonly required = false,
    private readonly memory?: FenceMemory,
  ) {
    for (const [name, token] of memory?.load() ?? []) this.newest.set(name, token);
  }

  /** The newest token seen for this export, the zero token if none. */
  current(exportName: string): FenceToken {
    return this.newest.get(exportName) ?? ZERO;
  }

  /** Record `token` for the export; false (and nothing changes) if a newer one was seen. */
  admit(exportName: string, token: FenceToken): boolean {
    const order = compareTokens(token, this.current(exportName));
    if (order < 0) return false;
    if (order > 0) {
      // Saved before it takes effect: a token this server acted on is never forgotten. A
      // newer token is rare (a takeover, a path switch), so the synchronous write costs little.
      this.memory?.save(exportName, token);
      this.newest.set(exportName, token);
    }
    return true;
  }
}

/**
 * One member process has one fabric, so an export name means one disk whichever of its NBD
 * servers (the member's port, a failover set's port) a client reaches it through: they share
 * this registry unless a server is given its own.
 */
export const processFences = new FenceRegistry();

/**
 * Whether a client connecting with `token` may enter transmission. A token with a term is a
 * Primary's claim: an older one is refused outright (a deposed Primary reconnecting). A term-0
 * token (a path generation, or a cluster member that holds no role yet) is let in whatever
 * its age, raising the newest if it is newer, and its requests are judged one by one: every
 * member of a set opens the set's backends at start, and a standby must be able to.
 */
export function mayConnect(registry: FenceRegistry, exportName: string, token: FenceToken): boolean {
  return registry.admit(exportName, token) || token.term === 0;
}

/** A fenced connection's token, judged against its export's newest. */
export class ConnectionFence {
  constructor(
    private readonly registry: FenceRegistry,
    readonly exportName: string,
    private token: FenceToken,
  ) {}

  get own(): string {
    return formatToken(this.token);
  }

  /** A newer token has been seen for the export: this connection's requests are refused. */
  stale(): boolean {
    return compareTokens(this.token, this.registry.current(this.exportName)) < 0;
  }

  /** NBD_CMD_BLOCKGATE_FENCE: move to `token`; false if it is older than the export's newest. */
  raise(token: FenceToken): boolean {
    if (!this.registry.admit(this.exportName, token)) return false;
    if (compareTokens(token, this.token) > 0) this.token = token;
    return true;
  }

  describe(): string {
    return `fencing token ${formatToken(this.token)} is older than ${formatToken(this.registry.current(this.exportName))}, the newest seen for export ${JSON.stringify(this.exportName)}`;
  }
}
