import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

/**
 * IP subnets and peer addresses of the management networks: parse them, tell whether an
 * address lies in a subnet (a sighting is attributed to the network whose subnet holds the
 * sender: Linux hands a socket packets that came in on any interface), and find this
 * host's own address on a network.
 */

export interface Subnet {
  readonly cidr: string;
  readonly network: string;
  readonly prefix: number;
  readonly family: 4 | 6;
  contains(address: string): boolean;
}

export function parseSubnet(cidr: string): Subnet | undefined {
  const m = /^(.+)\/(\d{1,3})$/.exec(cidr);
  if (!m) return undefined;
  const network = m[1]!;
  const prefix = Number(m[2]);
  const ipVersion = isIP(network);
  if (ipVersion === 0 || prefix > (ipVersion === 4 ? 32 : 128)) return undefined;
  const family: 4 | 6 = ipVersion === 4 ? 4 : 6;
  const list = new BlockList();
  const type = family === 4 ? 'ipv4' : 'ipv6';
  list.addSubnet(network, prefix, type);
  return {
    cidr,
    network,
    prefix,
    family,
    contains: (address) => {
      const a = unmapped(stripScope(address));
      return isIP(a) === family && list.check(a, type);
    },
  };
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** `HOST`, `HOST:PORT` (IPv4), a bare IPv6 address or `[V6]:PORT`; undefined if none of these. */
export function parsePeerAddress(text: string, defaultPort: number): HostPort | undefined {
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (bracketed) return checked(bracketed[1]!, Number(bracketed[2]));
  if (isIP(text) !== 0) return { host: text, port: defaultPort };
  const v4 = /^([0-9.]+):(\d+)$/.exec(text);
  if (v4) return checked(v4[1]!, Number(v4[2]));
  return undefined;
}

function checked(host: string, port: number): HostPort | undefined {
  return isIP(host) !== 0 && port >= 1 && port <= 65535 ? { host, port } : undefined;
}

export function formatHostPort(a: HostPort): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** `::ffff:10.0.0.1` (an IPv4 sender seen by a dual-stack socket) as `10.0.0.1`. */
export function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** `fe80::1%eth0` → `fe80::1`. */
function stripScope(address: string): string {
  const i = address.indexOf('%');
  return i < 0 ? address : address.slice(0, i);
}

export interface LocalAddress {
  readonly address: string;
  /** The interface it is on (`eth-a`): multicast and ICMP are sent out of it. */
  readonly interface: string;
}

/** This host's addresses inside `subnet`, with their interfaces. */
export function localAddressesIn(subnet: Subnet): LocalAddress[] {
  const out: LocalAddress[] = [];
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    for (const a of addresses ?? []) if (subnet.contains(a.address)) out.push({ address: a.address, interface: name });
  }
  return out;
}

/** The interface holding `address` on this host, if any. */
export function interfaceOf(address: string): string | undefined {
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    if ((addresses ?? []).some((a) => a.address === address)) return name;
  }
  return undefined;
}
