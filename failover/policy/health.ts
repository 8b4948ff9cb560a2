import { logger } from '../../fabric/log.js';
import type { HealthConfig, NetworkConfig } from '../config/schema/cluster.js';
import type { DiscoveryService } from '../discovery/service.js';
import type { Alarms } from './alarms.js';
import type { EventLoopMonitor } from './event-loop.js';
import type { Pinger } from './icmp.js';
import type { SelfTestReport } from './self-test.js';

const log = logger('health');

export type LinkState = 'up' | 'silent' | 'checking' | 'unconfirmed';
/** `stopped`: it said it was stopping (a planned stop), then went silent: no failure. */
export type PeerHealth = 'alive' | 'failed' | 'stopped';

export interface PeerHealthStatus {
  readonly id: string;
  readonly health: PeerHealth;
  readonly networks: Record<string, { readonly state: LinkState; readonly silenceMs: number | null; readonly icmpMs: number | null; readonly address?: string }>;
  /** Why it was judged failed, while it is. */
  readonly failure?: string;
}

export interface HealthMonitorOptions {
  readonly discovery: DiscoveryService;
  readonly networks: readonly NetworkConfig[];
  readonly health: HealthConfig;
  readonly alarms: Alarms;
  readonly pinger: Pinger;
  readonly loop: EventLoopMonitor;
  /** A peer was judged failed (silent everywhere, or its self-test failed). */
  readonly onMemberFailure: (peer: string, reason: string) => void;
}

interface PeerState {
  health: PeerHealth;
  failure?: string;
  links: Map<string, LinkState>;
  /** performance.now() when first heard: a network never heard is judged only after a grace period. */
  firstSeenMs: number;
}

/**
 * Health monitoring of the Policy Manager. Every peer, on every network: heartbeats (silence
 * past `silenceMs`), ICMP echo (is its host there?). When one network goes silent towards a
 * peer that still answers on another, the peer is asked over that other network to run its
 * self-test: passed, it is a link failure (an alarm naming the network, no role change);
 * failed, a member failure. Silence on every network is a member failure too — "host up,
 * member dead" when its host still answers ICMP echo. Judgements pause while this member's
 * own event loop has just been stalled (the silence would be its own).
 */
export class HealthMonitor {
  private readonly state = new Map<string, PeerState>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: HealthMonitorOptions) {}

  start(): void {
    this.timer = setInterval(() => this.check(), Math.min(100, this.options.health.heartbeatMs));
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Peers judged alive right now (heard on some network within the silence). */
  isAlive(id: string): boolean {
    const s = this.state.get(id);
    if (s) return s.health === 'alive';
    return this.options.networks.some((n) => this.options.discovery.peers.silenceMs(id, n.name) <= this.options.health.silenceMs);
  }

  status(): PeerHealthStatus[] {
    const { discovery, pinger, networks } = this.options;
    return discovery.peers.list().map((p) => {
      const s = this.state.get(p.id);
      const nets: PeerHealthStatus['networks'] = {};
      for (const n of networks) {
        const sighting = p.networks.get(n.name);
        const silence = discovery.peers.silenceMs(p.id, n.name);
        const icmp = sighting ? pinger.replyAgeMs(sighting.address.host) : Infinity;
        nets[n.name] = {
          state: s?.links.get(n.name) ?? 'unconfirmed',
          silenceMs: Number.isFinite(silence) ? Math.round(silence) : null,
          icmpMs: Number.isFinite(icmp) ? Math.round(icmp) : null,
          ...(sighting && { address: sighting.address.host }),
        };
      }
      return { id: p.id, health: s?.health ?? 'alive', networks: nets, ...(s?.failure !== undefined && { failure: s.failure }) };
    });
  }

  private check(): void {
    const { discovery, health, loop } = this.options;
    // Our own stall makes everyone look silent: judge nobody until we have heard them again.
    if (loop.stalledWithin(health.silenceMs)) return;
    for (const peer of discovery.peers.list()) {
      if (!peer.announcement) continue;
      let s = this.state.get(peer.id);
      if (!s) this.state.set(peer.id, (s = { health: 'alive', links: new Map(), firstSeenMs: performance.now() }));
      this.judge(peer.id, s);
    }
  }

  private judge(id: string, s: PeerState): void {
    const { discovery, health, networks, alarms } = this.options;
    const live: string[] = [];
    const silent: string[] = [];
    for (const n of networks) {
      const silence = discovery.peers.silenceMs(id, n.name);
      if (silence <= health.silenceMs) live.push(n.name);
      // A network never heard is given a grace period after the peer was first seen.
      else if (Number.isFinite(silence) || performance.now() - s.firstSeenMs > 5 * health.silenceMs) silent.push(n.name);
    }
    for (const n of live) {
      if (s.links.get(n) !== 'up') {
        if (s.links.has(n)) log.info({ peer: id, network: n }, 'heartbeats heard again');
        s.links.set(n, 'up');
        alarms.clear('link-down', n, id, 'heartbeats heard again');
      }
    }
    if (live.length === 0 && silent.length > 0) {
      if (s.health === 'alive' && discovery.peers.get(id)?.announcement?.state === 'stopping') {
        s.health = 'stopped';
        log.info({ peer: id }, 'member stopped (planned)');
      } else if (s.health === 'alive') this.memberFailed(id, s, this.silentEverywhere(id));
      return;
    }
    if (s.health !== 'alive' && live.length > 0) {
      s.health = 'alive';
      delete s.failure;
      alarms.clear('member-failed', undefined, id, 'heard again');
      log.info({ peer: id, networks: live }, 'member heard again');
      // Networks still silent are judged afresh (a self-test now that it answers).
      for (const n of silent) s.links.delete(n);
    }
    for (const n of silent) {
      const state = s.links.get(n);
      if (state === 'silent' || state === 'checking') continue;
      s.links.set(n, 'checking');
      void this.selfTestOver(id, s, n, live);
    }
  }

  /** Network `net` went silent towards `id`: ask `id` over the live networks to test itself. */
  private async selfTestOver(id: string, s: PeerState, net: string, live: readonly string[]): Promise<void> {
    const { discovery, health, alarms } = this.options;
    let report: SelfTestReport;
    try {
      report = (await discovery.request(id, 'selftest', { reason: `network ${net} silent` }, { timeoutMs: health.selfTestTimeoutMs + health.silenceMs, networks: live })) as SelfTestReport;
    } catch (err) {
      // The other networks failed too (or are failing): the next check judges again.
      if (s.links.get(net) === 'checking') s.links.delete(net);
      log.debug({ err, peer: id, network: net }, 'self-test request failed');
      return;
    }
    if (s.links.get(net) !== 'checking') return; // heard again meanwhile
    if (!report.ok) {
      const failed = report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail ?? 'failed'}`);
      this.memberFailed(id, s, `self-test failed (${failed.join('; ')})`);
      return;
    }
    s.links.set(net, 'silent');
    const address = discovery.peers.get(id)?.networks.get(net)?.address.host;
    const icmp = address === undefined ? Infinity : this.options.pinger.replyAgeMs(address);
    const echo = this.options.pinger.unavailable
      ? 'ICMP unavailable'
      : icmp <= health.silenceMs
        ? `its host still answers ICMP echo on ${net} (heartbeats are lost: a port or firewall?)`
        : `no ICMP echo on ${net} either`;
    alarms.raise('link-down', {
      network: net,
      peer: id,
      message: `network ${net} is down towards ${id}: no heartbeat for ${health.silenceMs} ms, ${echo}; ${id} answers on ${live.join(', ')} and passed its self-test`,
    });
  }

  private silentEverywhere(id: string): string {
    const { discovery, pinger, networks, health } = this.options;
    const echoes = networks.filter((n) => {
      const a = discovery.peers.get(id)?.networks.get(n.name)?.address.host;
      return a !== undefined && pinger.replyAgeMs(a) <= health.silenceMs;
    });
    if (echoes.length > 0) return `silent on every network while its host answers ICMP echo on ${echoes.map((n) => n.name).join(', ')}: the host is up, the member is not`;
    return pinger.unavailable ? 'silent on every network' : 'silent on every network and no ICMP echo: its host is down or every link to it is cut';
  }

  private memberFailed(id: string, s: PeerState, reason: string): void {
    s.health = 'failed';
    s.failure = reason;
    for (const n of s.links.keys()) s.links.set(n, 'silent');
    const { alarms } = this.options;
    // A member failure supersedes the link alarms about it.
    alarms.clearWhere((a) => a.kind === 'link-down' && a.peer === id, 'the member failed');
    alarms.raise('member-failed', { peer: id, message: `member ${id} failed: ${reason}` });
    this.options.onMemberFailure(id, reason);
  }
}
