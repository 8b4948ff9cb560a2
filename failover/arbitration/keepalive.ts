import { logger } from '../../fabric/log.js';
import { now } from './lease-clock.js';

const log = logger('arbiter-etcd');

/**
 * Keeps an etcd lease alive with one short, independent renewal every `intervalMs`, sent as
 * a plain HTTP request to etcd's gRPC gateway (`POST /v3/lease/keepalive`) with its own
 * timeout, to the endpoint that last answered (moving to the next one on a failure).
 *
 * Why not the etcd3 client's keep-alive: it is one long-lived gRPC stream pinned to one
 * node, and when the link to that node is cut (packets dropped, no reset) the stream goes
 * silent — neither the call deadline nor the client's circuit breaker sees it — until the
 * lease is lost, though the rest of the cluster is in reach. Renewals here overlap rather
 * than wait for each other, so one hung request delays nothing.
 *
 * `lastConfirmedSend` is the send time of the newest renewal etcd confirmed: etcd extends
 * the lease from when it handles the renewal, which is later, so the lease is good at least
 * until then + TTL.
 */
export class KeepAlive {
  lastConfirmedSend: number;
  onConfirmed: ((sentAt: number) => void) | undefined;
  lost = false;
  private readonly lostListeners = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private preferred = 0;

  constructor(
    private readonly endpoints: readonly string[],
    private readonly leaseId: string,
    private readonly intervalMs: number,
    grantSentAt: number,
  ) {
    this.lastConfirmedSend = grantSentAt;
    this.preferred = Math.floor(Math.random() * endpoints.length);
    this.timer = setInterval(() => void this.renew(), intervalMs);
    void this.renew();
  }

  onLost(listener: () => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  private async renew(): Promise<void> {
    if (this.stopped) return;
    const index = this.preferred;
    const endpoint = this.endpoints[index]!;
    const sentAt = now();
    try {
      const res = await fetch(`${endpoint}/v3/lease/keepalive`, {
        method: 'POST',
        body: JSON.stringify({ ID: this.leaseId }),
        signal: AbortSignal.timeout(Math.max(this.intervalMs * 1.5, 300)),
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = (await res.json()) as { result?: { TTL?: string } };
      if (this.stopped) return;
      if (Number(body.result?.TTL ?? 0) <= 0) {
        this.markLost();
        return;
      }
      if (sentAt > this.lastConfirmedSend) {
        this.lastConfirmedSend = sentAt;
        this.onConfirmed?.(sentAt);
      }
    } catch (err) {
      // The next renewal goes elsewhere (unless another one already moved us on).
      if (this.preferred === index) this.preferred = (index + 1) % this.endpoints.length;
      log.debug({ endpoint, err: String(err) }, 'lease renewal failed');
    }
  }

  private markLost(): void {
    if (this.lost) return;
    this.lost = true;
    this.stop();
    for (const l of [...this.lostListeners]) l();
  }

  stop(): void {
    this.stopped = true;
    this.onConfirmed = undefined;
    clearInterval(this.timer);
  }
}
