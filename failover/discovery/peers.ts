import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { formatHostPort, type HostPort } from '../config/net-address.js';
import type { Announcement } from '../peer/messages.js';

/** How a member was learnt of on a network. */
export type SightingSource = 'heartbeat' | 'mdns' | 'seed' | 'config';

/** One peer on one network: where to reach it there and when it was last heard there. */
export interface NetworkSighting {
  /** Where heartbeats and requests for it go on this network. */
  readonly address: HostPort;
  /** performance.now() of its last heartbeat on this network (undefined: never heard, only seen advertised). */
  readonly lastHeardMs: number | undefined;
  readonly source: SightingSource;
}

export interface PeerView {
  readonly id: string;
  /** The latest announcement of its current incarnation. */
  readonly announcement: Announcement | undefined;
  readonly networks: ReadonlyMap<string, NetworkSighting>;
}

export interface PeerTableEvents {
  /** A member was heard for the first time (any network). */
  joined: [PeerView];
  /** A member's incarnation grew: it restarted since we last heard it. */
  restarted: [PeerView, { readonly from: number; readonly to: number }];
  /** Its announcement changed in something other than the event-loop figure (roles, generation, state…). */
  changed: [PeerView, Announcement | undefined];
  /** First heartbeat on a network after silence (or ever): connectivity confirmed there. */
  heard: [PeerView, string];
}

interface MutablePeer {
  id: string;
  announcement: Announcement | undefined;
  networks: Map<string, NetworkSighting>;
  /** Last heartbeat sequence per network for the current incarnation (replays and reordering are dropped). */
  seq: Map<string, number>;
}

/** Silent this long on every network, a member's life is over: a lower incarnation is then a replacement. */
const GONE_MS = 3000;

/**
 * What this member knows of the others, network by network: the Discovery Service writes it
 * (mDNS, seeds, heartbeats), the Policy Manager reads it. A member is identified by its id;
 * its incarnation orders its announcements (a lower one is an earlier life, ignored).
 */
export class PeerTable extends EventEmitter<PeerTableEvents> {
  private readonly peers = new Map<string, MutablePeer>();
  /** Addresses that answered nothing yet (seeds, mDNS before a heartbeat), per network. */
  private readonly candidates = new Map<string, Map<string, { address: HostPort; source: SightingSource }>>();

  constructor(
    readonly self: string,
    private readonly now: () => number = () => performance.now(),
  ) {
    super();
  }

  get(id: string): PeerView | undefined {
    return this.peers.get(id);
  }

  list(): PeerView[] {
    return [...this.peers.values()];
  }

  /** An address to send heartbeats to on `network`, whose owner may not be known yet. */
  addCandidate(network: string, address: HostPort, source: SightingSource): void {
    let m = this.candidates.get(network);
    if (!m) this.candidates.set(network, (m = new Map()));
    const key = formatHostPort(address);
    if (!m.has(key)) m.set(key, { address, source });
  }

  /** An advertisement (mDNS) naming the member behind an address: heard of, not heard from. */
  advertised(id: string, network: string, address: HostPort, source: SightingSource): void {
    if (id === this.self) return;
    const peer = this.peer(id);
    const current = peer.networks.get(network);
    if (!current || formatHostPort(current.address) !== formatHostPort(address)) {
      peer.networks.set(network, { address, lastHeardMs: current?.lastHeardMs, source: current?.source ?? source });
    }
    this.addCandidate(network, address, source);
  }

  /**
   * A heartbeat arrived on `network` from `address` (the sender's management port there).
   * Returns false when it was ignored (our own, an earlier incarnation, a replayed sequence).
   */
  heartbeat(network: string, address: HostPort, seq: number, a: Announcement): boolean {
    if (a.id === this.self) return false;
    const isNew = !this.peers.has(a.id);
    const peer = this.peer(a.id);
    const previous = peer.announcement;
    // A lower incarnation is an earlier life's late packet, unless that life is over: then it
    // is a replacement (a new data directory starts counting again).
    if (previous && a.incarnation < previous.incarnation && !this.gone(peer)) return false;
    if (previous && a.incarnation !== previous.incarnation) {
      peer.seq.clear();
      this.emit('restarted', peer, { from: previous.incarnation, to: a.incarnation });
    } else if ((peer.seq.get(network) ?? -1) >= seq) {
      return false;
    }
    peer.seq.set(network, seq);
    const before = peer.networks.get(network);
    const silent = before?.lastHeardMs === undefined;
    peer.networks.set(network, { address, lastHeardMs: this.now(), source: 'heartbeat' });
    this.addCandidate(network, address, 'heartbeat');
    peer.announcement = a;
    if (isNew) this.emit('joined', peer);
    if (!previous || differs(previous, a)) this.emit('changed', peer, previous);
    if (silent) this.emit('heard', peer, network);
    return true;
  }

  /** Its last life is over: it said it was stopping, or nothing was heard from it on any network for a while. */
  private gone(peer: MutablePeer): boolean {
    if (peer.announcement?.state === 'stopping') return true;
    return [...peer.networks.values()].every((n) => n.lastHeardMs === undefined || this.now() - n.lastHeardMs > GONE_MS);
  }

  /** Forget when a network was last heard (it went silent): the next heartbeat is a `heard` again. */
  markSilent(id: string, network: string): void {
    const peer = this.peers.get(id);
    const s = peer?.networks.get(network);
    if (peer && s) peer.networks.set(network, { ...s, lastHeardMs: undefined });
  }

  /** Milliseconds since `id` was last heard on `network`; Infinity if never or silent. */
  silenceMs(id: string, network: string): number {
    const at = this.peers.get(id)?.networks.get(network)?.lastHeardMs;
    return at === undefined ? Infinity : this.now() - at;
  }

  /** Every address to send heartbeats to on `network`: known peers and candidates, once each. */
  targets(network: string): HostPort[] {
    const out = new Map<string, HostPort>();
    for (const { address } of this.candidates.get(network)?.values() ?? []) out.set(formatHostPort(address), address);
    for (const p of this.peers.values()) {
      const s = p.networks.get(network);
      if (s) out.set(formatHostPort(s.address), s.address);
    }
    return [...out.values()];
  }

  private peer(id: string): MutablePeer {
    let p = this.peers.get(id);
    if (!p) this.peers.set(id, (p = { id, announcement: undefined, networks: new Map(), seq: new Map() }));
    return p;
  }
}

/** Announcements differ in what others act on (the event-loop figure moves every heartbeat). */
function differs(a: Announcement, b: Announcement): boolean {
  return JSON.stringify({ ...a, eventLoopMs: 0 }) !== JSON.stringify({ ...b, eventLoopMs: 0 });
}
