/**
 * What a front end tells the operator about a connected client: the NBD connections and
 * iSCSI sessions as `blockgate sessions`, GET /api/v1/sessions and the dashboard list them.
 * Each front end answers from its own live objects when asked (nothing to keep in step).
 */
export interface FrontEndSession {
  readonly protocol: 'nbd' | 'iscsi';
  /** Unique on the member while the session lasts: `nbd/3`, `iscsi/tsih-5`. */
  readonly id: string;
  /** iSCSI: the initiator's name (IQN) and its session id (ISID, hex). */
  readonly initiator?: string;
  readonly isid?: string;
  /** iSCSI: the target logged in to; absent for discovery sessions. */
  readonly target?: string;
  /** `discovery` sessions (iSCSI SendTargets) list targets and reach no LUN. */
  readonly kind: 'normal' | 'discovery';
  /** `negotiating` until the client has picked an export (NBD) or finished login (iSCSI). */
  readonly state: 'negotiating' | 'serving';
  /** The exports the session reaches. */
  readonly exports: readonly string[];
  /** iSCSI: LUN → export of the target. */
  readonly luns?: ReadonlyArray<{ readonly lun: number; readonly export: string }>;
  /** One per TCP connection: the client's address and the portal (our address) it reached. */
  readonly connections: ReadonlyArray<{ readonly client: string; readonly portal: string }>;
  /** When the session began (ISO 8601). */
  readonly since: string;
}

/** `host:port` of a socket end, `[v6]:port`, or `unix` for a Unix socket peer. */
export function socketEnd(address: string | undefined, port: number | undefined, unixPath?: string): string {
  if (address === undefined || port === undefined) return unixPath !== undefined ? `unix:${unixPath}` : 'unix';
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
