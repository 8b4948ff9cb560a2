import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { logger } from '../../fabric/log.js';

/**
 * ICMP echo to the peers' addresses on every network through `raw-socket` (Node has no raw
 * sockets; it needs root or CAP_NET_RAW). An echo answered while heartbeats are silent means
 * the host and the link are up but the member is not: a member failure, not a link one.
 */

const log = logger('icmp');

/** RFC 792 and RFC 4443 message types. */
const ICMP_ECHO_REPLY = 0;
const ICMP_ECHO_REQUEST = 8;
const ICMP6_ECHO_REQUEST = 128;
const ICMP6_ECHO_REPLY = 129;
const ECHO_HEADER_BYTES = 8;
const PAYLOAD = Buffer.from('blockgate-health', 'ascii');

interface RawSocket {
  on(event: 'message', listener: (buffer: Buffer, source: string) => void): void;
  on(event: 'error', listener: (err: Error) => void): void;
  send(buffer: Buffer, offset: number, length: number, address: string, callback: (err: Error | null, bytes: number) => void): void;
  close(): void;
}

interface RawSocketModule {
  createSocket(options: { addressFamily?: number; protocol?: number }): RawSocket;
  createChecksum(buffer: Buffer): number;
  writeChecksum(buffer: Buffer, offset: number, checksum: number): void;
  AddressFamily: { IPv4: number; IPv6: number };
  Protocol: { ICMP: number; ICMPv6: number };
}

let raw: RawSocketModule | undefined;
function rawSocket(): RawSocketModule {
  raw ??= createRequire(import.meta.url)('raw-socket') as RawSocketModule;
  return raw;
}

/**
 * Pings a set of addresses every interval and remembers when each last answered. One raw
 * socket per address family; replies are matched by our identifier, so several members on
 * one host (one namespace) do not take each other's replies.
 */
export class Pinger {
  private v4: RawSocket | undefined;
  private v6: RawSocket | undefined;
  private readonly lastReply = new Map<string, number>();
  private readonly identifier: number;
  private sequence = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Why ICMP cannot be used here (no CAP_NET_RAW…), if it cannot. */
  unavailable: string | undefined;

  constructor(
    private readonly targets: () => readonly string[],
    private readonly intervalMs: number,
  ) {
    // The low 16 bits of the pid, mixed with a random half so restarts of one pid differ.
    this.identifier = (process.pid ^ Math.floor(Math.random() * 0xffff)) & 0xffff;
  }

  start(): void {
    try {
      const r = rawSocket();
      this.v4 = r.createSocket({ addressFamily: r.AddressFamily.IPv4, protocol: r.Protocol.ICMP });
      this.v6 = r.createSocket({ addressFamily: r.AddressFamily.IPv6, protocol: r.Protocol.ICMPv6 });
    } catch (err) {
      this.unavailable = err instanceof Error ? err.message : String(err);
      log.warn({ err: this.unavailable }, 'ICMP echo unavailable (needs root or CAP_NET_RAW): a dead member and a dead link are told apart by heartbeats alone');
      this.close();
      return;
    }
    this.v4.on('message', (b, source) => this.onReply(b, source, 4));
    this.v6.on('message', (b, source) => this.onReply(b, source, 6));
    for (const s of [this.v4, this.v6]) s.on('error', (err) => log.debug({ err }, 'ICMP socket error'));
    this.timer = setInterval(() => this.round(), this.intervalMs);
    this.round();
  }

  /** Milliseconds since `address` last answered an echo; Infinity if never (or ICMP is unavailable). */
  replyAgeMs(address: string): number {
    const at = this.lastReply.get(address);
    return at === undefined ? Infinity : performance.now() - at;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.close();
  }

  private close(): void {
    // An open raw socket keeps the event loop alive: a member could not exit.
    this.v4?.close();
    this.v6?.close();
    this.v4 = this.v6 = undefined;
  }

  private round(): void {
    this.sequence = (this.sequence + 1) & 0xffff;
    for (const address of this.targets()) {
      const family = isIP(address);
      const socket = family === 4 ? this.v4 : family === 6 ? this.v6 : undefined;
      if (!socket) continue;
      const packet = echoRequest(family === 4 ? ICMP_ECHO_REQUEST : ICMP6_ECHO_REQUEST, this.identifier, this.sequence);
      // ICMPv6 checksums cover a pseudo-header only the kernel knows: it fills them in (RFC 3542 §3.1).
      if (family === 4) rawSocket().writeChecksum(packet, 2, rawSocket().createChecksum(packet));
      socket.send(packet, 0, packet.length, address, (err) => {
        if (err) log.debug({ err: err.message, address }, 'echo request not sent');
      });
    }
  }

  private onReply(buffer: Buffer, source: string, family: 4 | 6): void {
    // An IPv4 raw socket delivers the IP header too; an IPv6 one does not.
    const offset = family === 4 ? (buffer[0]! & 0x0f) * 4 : 0;
    if (buffer.length < offset + ECHO_HEADER_BYTES) return;
    const type = buffer[offset]!;
    if (type !== (family === 4 ? ICMP_ECHO_REPLY : ICMP6_ECHO_REPLY)) return;
    if (buffer.readUInt16BE(offset + 4) !== this.identifier) return;
    this.lastReply.set(source, performance.now());
  }
}

function echoRequest(type: number, identifier: number, sequence: number): Buffer {
  const packet = Buffer.alloc(ECHO_HEADER_BYTES + PAYLOAD.length);
  packet[0] = type;
  packet[1] = 0; // code
  packet.writeUInt16BE(0, 2); // checksum, filled in after
  packet.writeUInt16BE(identifier, 4);
  packet.writeUInt16BE(sequence, 6);
  PAYLOAD.copy(packet, ECHO_HEADER_BYTES);
  return packet;
}
