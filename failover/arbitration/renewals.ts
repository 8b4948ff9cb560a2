import type { Lease } from 'etcd3';
import { now } from './lease-clock.js';

/**
 * Pairs the etcd3 client's keep-alive events with the time each renewal was *sent*: the
 * client emits `keepaliveFired` as it writes a renewal on the stream and
 * `keepaliveSucceeded` as etcd's answers come back, in order. The send time of a confirmed
 * renewal is the safe start of the extended lease.
 */
export class RenewalTracker {
  lastConfirmedSend: number = now();
  onConfirmed: ((sentAt: number) => void) | undefined;
  private readonly inFlight: number[] = [];
  private readonly fired = (): void => void this.inFlight.push(now());
  private readonly succeeded = (res: { TTL?: string }): void => {
    const sentAt = this.inFlight.shift();
    // A renewal answered with TTL ≤ 0 means the lease was already gone: not a renewal.
    if (sentAt === undefined || Number(res.TTL ?? 0) <= 0) return;
    this.confirmed(sentAt);
  };
  // A new keep-alive stream starts with no renewal in flight.
  private readonly reset = (): void => void this.inFlight.splice(0);

  constructor(private readonly lease: Lease) {
    lease.on('keepaliveFired', this.fired);
    lease.on('keepaliveSucceeded', this.succeeded);
    lease.on('keepaliveEstablished', this.reset);
    lease.on('keepaliveFailed', this.reset);
  }

  confirmed(sentAt: number): void {
    if (sentAt <= this.lastConfirmedSend) return;
    this.lastConfirmedSend = sentAt;
    this.onConfirmed?.(sentAt);
  }

  stop(): void {
    this.onConfirmed = undefined;
    this.lease.off('keepaliveFired', this.fired);
    this.lease.off('keepaliveSucceeded', this.succeeded);
    this.lease.off('keepaliveEstablished', this.reset);
    this.lease.off('keepaliveFailed', this.reset);
  }
}
