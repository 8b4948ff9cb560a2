import { logger } from '../../fabric/log.js';
import { ConfigError } from '../config/errors.js';
import { formatHostPort, interfaceOf, localAddressesIn, parsePeerAddress, parseSubnet, type LocalAddress, type Subnet } from '../config/net-address.js';
import type { ClusterConfig, NetworkConfig } from '../config/schema/cluster.js';
import { NetworkEndpoint, type EndpointCounters, type RequestHandler } from '../peer/endpoint.js';
import { PeerRequestError, type Announcement } from '../peer/messages.js';
import { MdnsDiscovery, type MdnsAdvert } from './mdns.js';
import { PeerTable } from './peers.js';

const log = logger('discovery');

/** This member on one network: where it listens and which interface carries it. */
export interface LocalNetwork {
  readonly network: NetworkConfig;
  readonly subnet: Subnet;
  readonly local: LocalAddress;
  readonly port: number;
}

export interface DiscoveryOptions {
  readonly cluster: ClusterConfig;
  readonly memberId: string;
  readonly key: Buffer;
  /** What this member says about itself now (read for every heartbeat and mDNS answer). */
  readonly announcement: () => Announcement;
}

/** Errors that say the path failed, not the peer: another network may still reach it. */
const PATH_ERRORS = new Set(['ETIMEDOUT', 'ECONNRESET', 'ESHUTDOWN', 'ENOPATH']);

/**
 * Heartbeat sequence numbers, per process: a member restarted inside its process (to run a
 * new configuration generation) keeps its incarnation, so its sequence must keep growing
 * or its peers would drop its heartbeats as replays.
 */
let heartbeatSeq = 0;

/**
 * The Discovery Service: on every management network, find the other members (DNS-SD over
 * mDNS, or the network's seed list where there is no multicast) and exchange heartbeats
 * with them, each carrying the sender's announcement (id, incarnation, versions, roles,
 * configuration generation). A heartbeat heard on a network confirms connectivity on that
 * network; the Policy Manager reads the silences.
 */
export class DiscoveryService {
  readonly peers: PeerTable;
  readonly locals: readonly LocalNetwork[];
  private readonly endpoints = new Map<string, NetworkEndpoint>();
  private readonly mdns = new Map<string, MdnsDiscovery>();
  private readonly handlers = new Map<string, RequestHandler>();
  /** The last mDNS advert heard per network and member, for status. */
  readonly adverts = new Map<string, Map<string, MdnsAdvert>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: DiscoveryOptions) {
    this.peers = new PeerTable(options.memberId);
    this.locals = localNetworks(options.cluster, options.memberId);
  }

  async start(): Promise<void> {
    const { cluster, memberId, key } = this.options;
    try {
      for (const l of this.locals) {
        const endpoint = new NetworkEndpoint({
          network: l.network,
          subnet: l.subnet,
          local: { host: l.local.address, port: l.port },
          key,
          memberId,
          connectTimeoutMs: cluster.health.silenceMs,
        });
        endpoint.on('heartbeat', (hb, from) => {
          // Requests and TCP heartbeats come from an ephemeral port: reply to the member's listening port.
          const port = this.listeningPort(l.network, hb.a.id) ?? (l.network.heartbeat.protocol === 'udp' ? from.port : l.network.heartbeat.port);
          this.peers.heartbeat(l.network.name, { host: from.address, port }, hb.seq, hb.a);
        });
        for (const [op, handler] of this.handlers) endpoint.handle(op, handler);
        this.endpoints.set(l.network.name, endpoint);
        await endpoint.start();
        this.addCandidates(l);
        if (l.network.discovery === 'mdns') {
          const mdns = new MdnsDiscovery({
            cluster: cluster.name,
            network: l.network.name,
            subnet: l.subnet,
            local: l.local,
            port: l.port,
            announcement: this.options.announcement,
            onAdvert: (advert) => this.onAdvert(l.network.name, advert),
            settled: () => this.peers.list().length >= cluster.members.length - 1,
          });
          this.mdns.set(l.network.name, mdns);
          mdns.start();
        }
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.timer = setInterval(() => this.beat(), cluster.health.heartbeatMs);
    this.beat();
  }

  /** Run `op` on every network's endpoint when a peer asks for it. */
  handle(op: string, handler: RequestHandler): void {
    this.handlers.set(op, handler);
    for (const e of this.endpoints.values()) e.handle(op, handler);
  }

  /**
   * Ask member `id` to run `op`, over the network heard most recently (or only `networks`),
   * trying the next when one fails as a path. The peer's own refusal is not retried.
   */
  async request(id: string, op: string, body: unknown, options: { timeoutMs: number; networks?: readonly string[] }): Promise<unknown> {
    const peer = this.peers.get(id);
    const candidates = [...(peer?.networks.entries() ?? [])]
      .filter(([net]) => !options.networks || options.networks.includes(net))
      .sort(([a], [b]) => this.peers.silenceMs(id, a) - this.peers.silenceMs(id, b));
    let last: unknown = new PeerRequestError('ENOPATH', `no known address of ${id}${options.networks ? ` on ${options.networks.join(', ')}` : ''}`);
    for (const [net, sighting] of candidates) {
      try {
        return await this.endpoints.get(net)!.request(sighting.address, op, body, options.timeoutMs);
      } catch (err) {
        last = err;
        if (!(err instanceof PeerRequestError) || !PATH_ERRORS.has(err.code)) throw err;
        log.debug({ err, peer: id, network: net, op }, 'request failed on this network: trying another');
      }
    }
    throw last;
  }

  counters(): Record<string, EndpointCounters & { mdnsForeign: number }> {
    const out: Record<string, EndpointCounters & { mdnsForeign: number }> = {};
    for (const [net, e] of this.endpoints) out[net] = { ...e.counters, mdnsForeign: this.mdns.get(net)?.foreignSource ?? 0 };
    return out;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.allSettled([...this.mdns.values()].map((m) => m.stop()));
    this.mdns.clear();
    await Promise.allSettled([...this.endpoints.values()].map((e) => e.stop()));
    this.endpoints.clear();
  }

  /** Send every network's heartbeat to everyone known there (seeds and adverts included). */
  beat(): void {
    const a = this.options.announcement();
    const seq = heartbeatSeq++;
    for (const l of this.locals) {
      const endpoint = this.endpoints.get(l.network.name);
      if (!endpoint) continue;
      for (const to of this.peers.targets(l.network.name)) {
        if (to.host === l.local.address && to.port === l.port) continue;
        endpoint.sendHeartbeat(to, { t: 'hb', net: l.network.name, seq, a });
      }
    }
  }

  private addCandidates(l: LocalNetwork): void {
    const d = l.network.discovery;
    if (d !== 'mdns') {
      for (const seed of d.seeds) {
        const a = parsePeerAddress(seed, l.network.heartbeat.port)!;
        if (!(a.host === l.local.address && a.port === l.port)) this.peers.addCandidate(l.network.name, a, 'seed');
      }
    }
    for (const m of this.options.cluster.members) {
      const text = m.addresses?.[l.network.name];
      if (m.id === this.options.memberId || text === undefined) continue;
      this.peers.advertised(m.id, l.network.name, parsePeerAddress(text, l.network.heartbeat.port)!, 'config');
    }
  }

  private onAdvert(network: string, advert: MdnsAdvert): void {
    if (advert.id === this.options.memberId) return;
    let m = this.adverts.get(network);
    if (!m) this.adverts.set(network, (m = new Map()));
    const known = m.get(advert.id);
    m.set(advert.id, advert);
    if (!known || formatHostPort(known.address) !== formatHostPort(advert.address)) {
      log.info({ network, peer: advert.id, address: formatHostPort(advert.address), incarnation: advert.incarnation }, 'member found by mDNS');
    }
    this.peers.advertised(advert.id, network, advert.address, 'mdns');
  }

  /** A member's listening port on a network, when configured or advertised. */
  private listeningPort(network: NetworkConfig, id: string): number | undefined {
    const configured = this.options.cluster.members.find((m) => m.id === id)?.addresses?.[network.name];
    if (configured !== undefined) return parsePeerAddress(configured, network.heartbeat.port)?.port;
    return this.adverts.get(network.name)?.get(id)?.address.port;
  }
}

/** Where this member is on each network: its configured address, else this host's one address in the subnet. */
export function localNetworks(cluster: ClusterConfig, memberId: string): LocalNetwork[] {
  const me = cluster.members.find((m) => m.id === memberId);
  return cluster.networks.map((network, i) => {
    const subnet = parseSubnet(network.subnet)!;
    const configured = me?.addresses?.[network.name];
    if (configured !== undefined) {
      const a = parsePeerAddress(configured, network.heartbeat.port)!;
      const iface = interfaceOf(a.host);
      if (iface === undefined) throw new ConfigError(`cluster.members[${memberId}].addresses.${network.name}`, `${a.host} is not an address of this host`);
      return { network, subnet, local: { address: a.host, interface: iface }, port: a.port };
    }
    const found = localAddressesIn(subnet);
    if (found.length !== 1) {
      throw new ConfigError(
        `cluster.networks[${i}]`,
        found.length === 0
          ? `no address of this host is in ${network.subnet} (network ${network.name}): add one, or give cluster.members[].addresses`
          : `this host has several addresses in ${network.subnet} (${found.map((f) => f.address).join(', ')}): name this member's in cluster.members[].addresses.${network.name}`,
      );
    }
    return { network, subnet, local: found[0]!, port: network.heartbeat.port };
  });
}
