import { AddressList } from '../access/address-list.js';
import type { TlsPeer } from './tls.js';

/**
 * Who may use which export over NBD: per export, the client addresses (CIDR blocks) and
 * TLS identities (PSK usernames, client certificate DNs) it admits, and whether it is
 * offered only over TLS. A client is judged at each option that names an export: one it may
 * not use is not listed, and asking for it gets NBD_REP_ERR_POLICY (or NBD_REP_ERR_TLS_REQD
 * before TLS). Clients on a Unix socket have no address: file permissions admit them.
 */

export interface ExportRules {
  /** Offered only over TLS (not even listed before STARTTLS). */
  readonly requireTls?: boolean;
  readonly allow?: {
    readonly addresses?: readonly string[];
    /** Implies TLS: an identity exists only once the client has authenticated. */
    readonly identities?: readonly string[];
  };
}

export interface NbdClient {
  /** Remote IP address; none on a Unix socket. */
  readonly address?: string;
  /** Set once STARTTLS has succeeded. */
  readonly tls?: TlsPeer;
}

export type Verdict = 'allowed' | 'tls-required' | 'not-allowed';

interface CompiledRules {
  readonly requireTls: boolean;
  readonly addresses?: AddressList;
  readonly identities?: ReadonlySet<string>;
}

export class NbdAccess {
  private readonly rules = new Map<string, CompiledRules>();

  /** Throws an Error naming the export whose rules are bad. */
  constructor(
    rules: ReadonlyMap<string, ExportRules>,
    /** Every export needs TLS (nbd.tls.require). */
    readonly tlsForced: boolean,
  ) {
    for (const [name, r] of rules) {
      let addresses: AddressList | undefined;
      try {
        addresses = r.allow?.addresses && new AddressList(r.allow.addresses);
      } catch (err) {
        throw new Error(`export ${JSON.stringify(name)}: ${(err as Error).message}`);
      }
      this.rules.set(name, {
        requireTls: tlsForced || r.requireTls === true || r.allow?.identities !== undefined,
        ...(addresses && { addresses }),
        ...(r.allow?.identities && { identities: new Set(r.allow.identities) }),
      });
    }
  }

  verdict(exportName: string, client: NbdClient): Verdict {
    const r = this.rules.get(exportName);
    if (!r) return this.tlsForced && !client.tls ? 'tls-required' : 'allowed';
    if (r.addresses && client.address !== undefined && !r.addresses.has(client.address)) return 'not-allowed';
    if (r.requireTls && !client.tls) return 'tls-required';
    if (r.identities && (client.tls?.identity === undefined || !r.identities.has(client.tls.identity))) return 'not-allowed';
    return 'allowed';
  }
}
