import { BlockList, isIP } from 'node:net';

/**
 * Client addresses an access list admits: single addresses and CIDR blocks, IPv4 and IPv6,
 * matched by Node's BlockList. An IPv4 client seen on a dual-stack listener as
 * `::ffff:a.b.c.d` matches its IPv4 entries.
 */
export class AddressList {
  private readonly list = new BlockList();

  /** Throws an Error naming the bad entry. */
  constructor(readonly entries: readonly string[]) {
    for (const entry of entries) {
      const slash = entry.indexOf('/');
      const address = slash < 0 ? entry : entry.slice(0, slash);
      const family = isIP(address);
      if (family === 0) throw new Error(`${JSON.stringify(entry)} is not an IP address or CIDR block`);
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (slash < 0) {
        this.list.addAddress(address, type);
        continue;
      }
      const bits = entry.slice(slash + 1);
      const prefix = Number(bits);
      if (!/^\d+$/.test(bits) || prefix > (family === 4 ? 32 : 128)) throw new Error(`${JSON.stringify(entry)} has a bad prefix length`);
      this.list.addSubnet(address, prefix, type);
    }
  }

  has(address: string): boolean {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    const plain = mapped ? mapped[1]! : address;
    const family = isIP(plain);
    return family !== 0 && this.list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
  }
}
