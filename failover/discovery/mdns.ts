import makeMdns from 'multicast-dns';
import type { Answer, StringAnswer, TxtAnswer } from 'dns-packet';
import type { RemoteInfo } from 'node:dgram';
import { logger } from '../../fabric/log.js';
import { unmapped, type HostPort, type LocalAddress, type Subnet } from '../config/net-address.js';
import type { Announcement } from '../peer/messages.js';

const log = logger('mdns');

/** The DNS-SD service type of blockgate members (RFC 6763 §7). */
export const SERVICE_TYPE = '_blockgate._tcp.local';
const MDNS_PORT = 5353;
const MDNS_V4 = '224.0.0.251';
const MDNS_V6 = 'ff02::fb';
/** Records live two minutes (RFC 6762 §10 suggests 120 s for host records); members re-announce well before. */
const TTL_S = 120;

/** What a member's TXT record says (RFC 6763 §6: key=value strings). */
export interface MdnsAdvert {
  readonly cluster: string;
  readonly id: string;
  readonly incarnation: number;
  readonly version: string;
  readonly protocol: string;
  readonly schema: string;
  readonly generation: number;
  readonly state: string;
  readonly roles: string;
  /** Where its management port is on this network. */
  readonly address: HostPort;
}

export interface MdnsOptions {
  readonly cluster: string;
  readonly network: string;
  readonly subnet: Subnet;
  /** Our address on the network (its interface carries the multicast). */
  readonly local: LocalAddress;
  readonly port: number;
  /** What we say now (read at every answer). */
  readonly announcement: () => Announcement;
  readonly onAdvert: (advert: MdnsAdvert) => void;
  /** Ask the network every this often until `settled()`, then ten times less often. */
  readonly queryMs?: number;
  readonly settled?: () => boolean;
}

/**
 * DNS-SD over multicast DNS on one management network: answers queries for
 * `_blockgate._tcp.local` with this member's PTR, SRV, TXT and address records, announces
 * them when they change, and queries for the others. The socket is bound to the wildcard
 * address with the network's interface chosen for the group (one bound to a unicast address
 * receives no multicast); since Linux hands it packets from every interface that joined
 * the group, only senders inside the network's subnet are heard.
 */
export class MdnsDiscovery {
  private readonly mdns: makeMdns.MulticastDNS;
  private readonly instance: string;
  private readonly host: string;
  private timer: NodeJS.Timeout | undefined;
  private lastTxt = '';
  private stopped = false;
  foreignSource = 0;

  constructor(private readonly options: MdnsOptions) {
    const v6 = options.subnet.family === 6;
    const iface = v6 ? `::%${options.local.interface}` : options.local.address;
    this.mdns = makeMdns({
      type: v6 ? 'udp6' : 'udp4',
      ip: v6 ? MDNS_V6 : MDNS_V4,
      port: MDNS_PORT,
      interface: iface,
      bind: v6 ? '::' : '0.0.0.0',
      reuseAddr: true,
      loopback: true,
    });
    this.instance = `${options.cluster}-${this.id()}.${SERVICE_TYPE}`;
    this.host = `${options.cluster}-${this.id()}-${options.network}.local`;
    this.mdns.on('query', (q, rinfo) => this.onQuery(q, rinfo));
    this.mdns.on('response', (r, rinfo) => this.onResponse(r, rinfo));
    this.mdns.on('warning', (err: Error) => log.debug({ err, network: options.network }, 'mDNS warning'));
    this.mdns.on('error', (err: Error) => log.warn({ err, network: options.network }, 'mDNS socket error'));
  }

  start(): void {
    const tick = (): void => {
      if (this.stopped) return;
      this.query();
      // Re-announce when what we say changed (roles, generation): peers learn it without asking.
      if (this.txt().join(' ') !== this.lastTxt) this.announce();
      const every = this.options.queryMs ?? 1000;
      this.timer = setTimeout(tick, this.options.settled?.() ? every * 10 : every);
    };
    this.announce();
    tick();
  }

  stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    return new Promise((resolve) => this.mdns.destroy(() => resolve()));
  }

  private id(): string {
    return this.options.announcement().id;
  }

  private query(): void {
    this.mdns.query({ questions: [{ name: SERVICE_TYPE, type: 'PTR' }] }, (err: Error | null) => {
      if (err) log.debug({ err, network: this.options.network }, 'mDNS query not sent');
    });
  }

  private announce(): void {
    const records = this.records();
    this.lastTxt = this.txt().join(' ');
    this.mdns.respond({ answers: records.slice(0, 1), additionals: records.slice(1) }, (err: Error | null) => {
      if (err) log.debug({ err, network: this.options.network }, 'mDNS announcement not sent');
    });
  }

  private onQuery(q: { questions: Array<{ name: string; type: string }> }, rinfo: RemoteInfo): void {
    if (!this.fromNetwork(rinfo)) return;
    if (q.questions.some((x) => x.name.toLowerCase() === SERVICE_TYPE && (x.type === 'PTR' || x.type === 'ANY'))) this.announce();
  }

  private onResponse(r: { answers: Answer[]; additionals?: Answer[] }, rinfo: RemoteInfo): void {
    if (!this.fromNetwork(rinfo)) return;
    const all = [...r.answers, ...(r.additionals ?? [])];
    for (const ptr of all) {
      if (ptr.type !== 'PTR' || ptr.name.toLowerCase() !== SERVICE_TYPE) continue;
      const instance = (ptr as StringAnswer).data;
      if (instance === this.instance) continue;
      const srv = all.find((a) => a.type === 'SRV' && a.name === instance) as { data: { port: number; target: string } } | undefined;
      const txt = all.find((a) => a.type === 'TXT' && a.name === instance) as TxtAnswer | undefined;
      if (!srv || !txt) continue;
      const addr = all.find((a) => (a.type === 'A' || a.type === 'AAAA') && a.name === srv.data.target) as StringAnswer | undefined;
      const host = addr?.data ?? unmapped(rinfo.address);
      if (!this.options.subnet.contains(host)) continue;
      const fields = parseTxt(txt.data);
      if (fields.cluster !== this.options.cluster || !fields.id) continue;
      this.options.onAdvert({
        cluster: fields.cluster,
        id: fields.id,
        incarnation: Number(fields.inc ?? 0),
        version: fields.ver ?? '',
        protocol: fields.proto ?? '',
        schema: fields.schema ?? '',
        generation: Number(fields.gen ?? 0),
        state: fields.state ?? '',
        roles: fields.roles ?? '',
        address: { host, port: srv.data.port },
      });
    }
  }

  private fromNetwork(rinfo: RemoteInfo): boolean {
    if (this.options.subnet.contains(unmapped(rinfo.address))) return true;
    this.foreignSource++;
    return false;
  }

  private txt(): string[] {
    const a = this.options.announcement();
    return [
      `cluster=${a.cluster}`,
      `id=${a.id}`,
      `inc=${a.incarnation}`,
      `ver=${a.version}`,
      `proto=${a.protocol.join('-')}`,
      `schema=${a.schema.join('-')}`,
      `gen=${a.generation}`,
      `state=${a.state}`,
      `roles=${Object.entries(a.roles)
        .map(([set, role]) => `${set}:${role}`)
        .join(',')}`,
      `net=${this.options.network}`,
    ];
  }

  private records(): Answer[] {
    const { local, port } = this.options;
    return [
      { name: SERVICE_TYPE, type: 'PTR', ttl: TTL_S, data: this.instance },
      { name: this.instance, type: 'SRV', ttl: TTL_S, data: { port, target: this.host, priority: 0, weight: 0 } },
      { name: this.instance, type: 'TXT', ttl: TTL_S, data: this.txt() },
      { name: this.host, type: this.options.subnet.family === 6 ? 'AAAA' : 'A', ttl: TTL_S, data: local.address },
    ] as Answer[];
  }
}

function parseTxt(data: TxtAnswer['data']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of Array.isArray(data) ? data : [data]) {
    const s = Buffer.isBuffer(entry) ? entry.toString('utf8') : String(entry);
    const i = s.indexOf('=');
    if (i > 0) out[s.slice(0, i)] = s.slice(i + 1);
  }
  return out;
}
