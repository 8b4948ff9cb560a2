import type { FabricSwitch } from '../fabric/switch.js';
import type { BootContext, BootOutcome } from '../failover/boot/phase.js';
import type { MemberConfig } from '../failover/config/schema/member-config.js';
import type { FailoverSets } from '../failover/sets.js';
import type { ConfigControl } from './config-control.js';
import type { MemberStore } from './store.js';

/**
 * The member's ports as the member sees them: it starts, reconfigures and stops them and
 * knows nothing of their protocols. The gateway (gateway/ports.ts) provides them, so
 * dependencies point one way: the gateway knows the member, the member knows only this
 * interface.
 */
export interface Port {
  readonly protocol: string;
  start(): Promise<void>;
  /** Stop accepting, let in-flight requests finish for up to `drainMs`, then close. */
  stop(options: { drainMs: number }): Promise<void>;
  /** Where hosts reach it, for logs and tests: `127.0.0.1:10809`, `unix:/run/x.sock`. */
  addresses(): string[];
  /**
   * A live configuration change, before the fabric changes: disconnect, cleanly, the
   * clients of these exports (removed, changed, or over a device tree that is rebuilt).
   */
  release?(exports: ReadonlySet<string>, next: MemberConfig): Promise<void>;
  /** After the fabric changed: serve the new configuration without dropping anyone else. */
  reconfigure?(next: MemberConfig): Promise<void>;
  /** What connected clients hold open now: a live change must not pull these from under them. */
  inUse?(): InUse;
}

/** The exports and iSCSI targets that connected clients use. */
export interface InUse {
  readonly exports: readonly string[];
  readonly targets: readonly string[];
}

/** What a port is built from. */
export interface PortContext {
  /** The configuration the member runs (with this run's command-line overrides). */
  readonly config: MemberConfig;
  /** What the boot phase decided: roles, and a cluster member's services (the API shows them). */
  readonly boot: BootOutcome;
  readonly fabric: FabricSwitch;
  /** The member's failover sets as they are now (a reload rebuilds them). */
  sets(): FailoverSets;
  readonly dataDir: string;
  /** The member store, for state a port keeps (persistent reservations). */
  readonly store: MemberStore | undefined;
  /** Which member of the configuration's cluster this process is. */
  readonly memberId: string;
  /** Who is Primary of each failover set of this member (ports every member serves, such as a set's iSCSI portal groups, follow it). */
  readonly primaryOf: BootOutcome['primaryOf'];
  /** The member's ports as they are now (the management API lists the others' sessions). */
  ports(): readonly Port[];
  /** Every port's addresses by protocol, as they are when asked (status pages list them). */
  addresses(): Record<string, string[]>;
  /** The member's live configuration (apply, diff, roll back), once it runs; undefined before. */
  configControl(): ConfigControl | undefined;
}

export interface PortProvider {
  /** The protocols a configuration calls for, in start order (stopped in reverse). */
  protocols(config: MemberConfig): string[];
  /** One port of a configuration. */
  port(protocol: string, context: PortContext): Port;
  /** The ports a failover set opens on this member while it is the set's Primary (held to the member's client limits and access rules). */
  setPorts(set: Parameters<BootContext['setPorts']>[0], fabric: FabricSwitch, memberId: string, config: MemberConfig): ReturnType<BootContext['setPorts']>;
}
