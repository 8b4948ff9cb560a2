import type { Logger } from '../../fabric/log.js';

/**
 * Every client a front end turns away, counted by protocol and reason (the
 * `blockgate_connections_refused_total` metric) and logged. A flood of refusals is one
 * line per reason every few seconds with the number left out, never a line per attempt.
 */
export type RefusalReason =
  /** The listener already has its maximum of connections. */
  | 'connection-limit'
  /** This client address already has its maximum of connections. */
  | 'client-limit'
  /** No handshake (NBD) or login (iSCSI) within the time allowed. */
  | 'timeout'
  /** The client asked for an export without TLS that requires it. */
  | 'tls-required'
  /** TLS handshake failed: bad certificate, unknown PSK identity, wrong key. */
  | 'tls-failed'
  /** The access list of the export or target does not name this client. */
  | 'not-allowed'
  /** CHAP failed or was required and skipped. */
  | 'authentication'
  /** The client's fencing token is older than the newest the export has seen (NBD). */
  | 'fenced';

export type RefusalProtocol = 'nbd' | 'iscsi';

const LOG_INTERVAL_MS = 5000;

interface Tally {
  count: number;
  lastLogged: number;
  unlogged: number;
}

export class Refusals {
  private readonly tallies = new Map<string, Tally>();

  /** Count a refusal and log it (rate-limited per protocol and reason). `details` must hold no secret. */
  refuse(protocol: RefusalProtocol, reason: RefusalReason, log: Logger, details: Record<string, unknown> = {}): void {
    const key = `${protocol}\0${reason}`;
    let tally = this.tallies.get(key);
    if (!tally) this.tallies.set(key, (tally = { count: 0, lastLogged: -Infinity, unlogged: 0 }));
    tally.count++;
    const now = performance.now();
    if (now - tally.lastLogged < LOG_INTERVAL_MS) {
      tally.unlogged++;
      return;
    }
    log.warn({ protocol, reason, ...details, ...(tally.unlogged > 0 && { alsoRefused: tally.unlogged }) }, 'client refused');
    tally.lastLogged = now;
    tally.unlogged = 0;
  }

  /** Counts so far, for metrics and tests. */
  counts(): Array<{ protocol: RefusalProtocol; reason: RefusalReason; count: number }> {
    return [...this.tallies].map(([key, t]) => {
      const [protocol, reason] = key.split('\0') as [RefusalProtocol, RefusalReason];
      return { protocol, reason, count: t.count };
    });
  }

  count(protocol: RefusalProtocol, reason: RefusalReason): number {
    return this.tallies.get(`${protocol}\0${reason}`)?.count ?? 0;
  }
}
