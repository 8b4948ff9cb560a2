import {
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
} from '../../fabric/protocols/nbd.js';
import { NbdProtocolError } from './errors.js';
import type { TlsPeer } from './tls.js';
import { greeting } from './wire.js';

/** What a negotiation phase reads and writes through; the connection provides it. */
export interface NegotiationIo {
  /** Exactly `n` bytes, as one buffer; rejects if the peer goes away first. */
  read(n: number): Promise<Buffer>;
  write(data: Buffer): void;
  /** The client's IP address; none on a Unix socket. */
  readonly address?: string;
  /**
   * Turn the connection into TLS (our ACK to NBD_OPT_STARTTLS is written first) and resolve
   * with who the client proved to be; rejects if the handshake fails. Absent: no TLS here.
   */
  startTls?(): Promise<TlsPeer>;
}

export interface ClientFlags {
  readonly fixedNewstyle: boolean;
  readonly noZeroes: boolean;
}

export const HANDSHAKE_FLAGS = NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES;
const KNOWN_CLIENT_FLAGS = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES;

/** The fixed newstyle greeting, then the client's flags (unknown ones end the session). */
export async function handshake(io: NegotiationIo): Promise<ClientFlags> {
  io.write(greeting(HANDSHAKE_FLAGS));
  const flags = (await io.read(4)).readUInt32BE(0);
  if ((flags & ~KNOWN_CLIENT_FLAGS) !== 0) {
    throw new NbdProtocolError(`unknown client flags 0x${flags.toString(16)}`);
  }
  return {
    fixedNewstyle: (flags & NBD_FLAG_C_FIXED_NEWSTYLE) !== 0,
    noZeroes: (flags & NBD_FLAG_C_NO_ZEROES) !== 0,
  };
}
