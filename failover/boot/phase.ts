import type { RootDatabase } from 'lmdb';
import type { BlockDevice } from '../../fabric/device.js';
import type { FabricSwitch } from '../../fabric/switch.js';
import type { ClusterStatus } from '../cluster/runtime.js';
import type { SetActions, SetRole } from '../cluster/set-runner.js';
import type { SetView } from '../cluster/set-view.js';
import type { FailoverSetConfig } from '../config/schema/cluster.js';
import type { MemberConfig } from '../config/schema/member-config.js';
import type { ConfigRecord, ConfigStore } from '../config/store.js';
import type { SubmitResult } from '../sync/config-sync.js';

/**
 * The boot phase of a member: after its device graph is built and before its ports open, it
 * decides what this member serves. This is where the Boot and Arbitration services plug in:
 * a member without a `cluster:` section boots standalone and serves everything
 * (standalone.ts); a cluster member takes part in its failover sets' elections
 * (../cluster/boot.ts) and serves a set's exports only while it is that set's Primary.
 *
 * The member calls, in order: `boot(context)` → (ports start) → `outcome.start()`; and on
 * stop `outcome.stop()` → (ports stop) → (devices close).
 */
export interface BootPhase {
  readonly name: string;
  boot(context: BootContext): Promise<BootOutcome>;
}

/** What the member hands its boot phase. */
export interface BootContext {
  readonly config: MemberConfig;
  /** Which member of the configuration's cluster this process is (`serve --member`), else config.member. */
  readonly memberId: string;
  /** The built device graph and its exports. */
  readonly fabric: FabricSwitch;
  /**
   * The ports a failover set opens on this member while it is the set's Primary (its NBD
   * listeners, its service address). The gateway provides them; the boot phase decides when.
   */
  readonly setPorts: (set: FailoverSetConfig) => SetActions & { addresses(): string[] };
  /** The member store (a cluster with management networks keeps its incarnation, failures and generations there). */
  readonly store?: { readonly root: RootDatabase; readonly config: ConfigStore };
  /** This member's software version, announced to its peers. */
  readonly version?: string;
  /** The devices this member exports (a self-test reads them). */
  readonly devices?: () => readonly BlockDevice[];
  /** This member's management API URL once its ports are up, announced to peers and operators. */
  readonly api?: () => string | undefined;
}

/** A cluster member's services as the management API sees them (members with management networks). */
export interface ClusterServices {
  /** This member's id in the cluster. */
  readonly memberId: string;
  /** Members, networks, roles, alarms as this member sees them. */
  status(): ClusterStatus | undefined;
  /** Where another member's management API is reached from here ([] only from its own host; undefined while it is not heard). */
  apiOf(member: string): string[] | undefined;
  /** HMAC-SHA256 (hex) of `text` with the cluster's shared key: members vouch for what they forward. */
  seal(text: string): string;
  /** Make `doc` the cluster's configuration (the cluster set's Primary writes it; forwarded there). */
  submitConfig(doc: unknown, source: string): Promise<SubmitResult>;
  /** An operator clears `member`'s quarantine. */
  clearQuarantine(member: string, by: string): Promise<boolean>;
  /** A configuration file given at start, proposed to the cluster once this member has booted. */
  proposeFile(config: MemberConfig, source: string): Promise<void>;
  /** A newer configuration generation reached this member's store: the member should run it. */
  on(event: 'config', listener: (record: ConfigRecord) => void): unknown;
}

/** One failover set's role on this member, for status and logs. */
export interface SetRoleInfo {
  readonly set: string;
  readonly role: SetRole;
  /** The fencing token of the current Primary term, while Primary. */
  readonly token?: number;
}

/** What the boot phase decided, and the handle that keeps the decision current. */
export interface BootOutcome {
  /** `standalone`: no cluster, every export served; `cluster`: roles decided per failover set. */
  readonly mode: 'standalone' | 'cluster';
  /**
   * The per-request gate of an export (true: this member may serve it now), or undefined
   * when it is always served. Checked synchronously on every request (fabric/layers/fenced.ts).
   */
  gate(exportName: string): (() => boolean) | undefined;
  /** Once the member's ports are up: start taking part (campaign for roles). */
  start(): void;
  /** Before the ports stop: hand roles over, release leases. Safe to call twice. */
  stop(): Promise<void>;
  /** The roles this member holds now. */
  roles(): readonly SetRoleInfo[];
  /** Who is Primary of a failover set this member belongs to, as it sees it (ports every member serves follow it); undefined otherwise. */
  primaryOf(set: string): SetView | undefined;
  /** With management networks: the cluster services. */
  readonly cluster?: ClusterServices;
}
