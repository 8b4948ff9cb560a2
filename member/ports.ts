import type { FabricSwitch } from '../fabric/switch.js';
import type { BootContext, BootOutcome } from '../failover/boot/phase.js';
import type { FailoverSets } from '../failover/sets.js';
import type { MemberConfig } from '../failover/config/schema/member-config.js';
import type { MemberStore } from './store.js';

/**
 * The member's ports as the member sees them: it starts and stops them as a list and knows
 * nothing of their protocols. The gateway (gateway/ports.ts) provides them, so dependencies
 * point one way: the gateway knows the member, the member knows only this interface.
 */
export interface Port {
  readonly protocol: string;
  start(): Promise<void>;
  /** Stop accepting, let in-flight requests finish for up to `drainMs`, then close. */
  stop(options: { drainMs: number }): Promise<void>;
  /** Where hosts reach it, for logs and tests: `127.0.0.1:10809`, `unix:/run/x.sock`. */
  addresses(): string[];
}

/** What a port is built from. */
export interface PortContext {
  /** The configuration the member runs (with this run's command-line overrides). */
  readonly config: MemberConfig;
  readonly fabric: FabricSwitch;
  /** The member's failover sets (their typed state, their operator actions). */
  readonly sets: FailoverSets;
  readonly dataDir: string;
  /** The member store, for state a port keeps (persistent reservations). */
  readonly store: MemberStore | undefined;
  /** Which member of the configuration's cluster this process is. */
  readonly memberId: string;
  /** Who is Primary of each failover set of this member (ports every member serves, such as a set's iSCSI portal groups, follow it). */
  readonly primaryOf: BootOutcome['primaryOf'];
  /** Every port's addresses by protocol, as they are when asked (status pages list them). */
  addresses(): Record<string, string[]>;
}

export interface PortProvider {
  /** The member's ports for a configuration, in start order (stopped in reverse). */
  ports(context: PortContext): Port[];
  /** The ports a failover set opens on this member while it is the set's Primary. */
  setPorts(set: Parameters<BootContext['setPorts']>[0], fabric: FabricSwitch, memberId: string): ReturnType<BootContext['setPorts']>;
}
