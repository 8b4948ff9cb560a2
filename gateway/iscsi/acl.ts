import type { ChapCredentials } from './chap.js';

/**
 * A target's access list (LIO's node ACLs): the initiators that may log in, each with its
 * own CHAP credentials, the LUNs it sees (LUN masking) and whether it may reset the target.
 * A target without a list admits every initiator with the target's own settings.
 */

export interface InitiatorAclConfig {
  /** The initiator's iSCSI name (InitiatorName at login). */
  readonly initiator: string;
  /** This initiator's CHAP credentials, required of it; instead of the target's. */
  readonly chap?: ChapCredentials;
  /** The LUNs it sees; absent: all of the target's. */
  readonly luns?: readonly number[];
  /** It may send TARGET WARM/COLD RESET; absent: the target's setting. */
  readonly allowTargetReset?: boolean;
}

/** What one initiator may do on one target. */
export interface InitiatorAccess {
  readonly chap?: ChapCredentials;
  /** Logging in with AuthMethod=None is accepted. */
  readonly allowNoAuth: boolean;
  /** LUN masking; undefined: every LUN. */
  readonly luns?: ReadonlySet<number>;
  readonly allowTargetReset: boolean;
}

export interface TargetAccessDefaults {
  readonly chap?: ChapCredentials;
  readonly allowNoAuth: boolean;
  readonly allowTargetReset: boolean;
}

export class TargetAcl {
  /** By lower-cased name: iSCSI names compare without case (RFC 3722). */
  private readonly entries: ReadonlyMap<string, InitiatorAccess> | undefined;
  private readonly open: InitiatorAccess;

  constructor(defaults: TargetAccessDefaults, acls: readonly InitiatorAclConfig[] | undefined) {
    this.open = defaults;
    this.entries =
      acls &&
      new Map(
        acls.map((a) => [
          a.initiator.toLowerCase(),
          {
            // An initiator with its own secret must use it; one without follows the target.
            ...(a.chap ? { chap: a.chap, allowNoAuth: false } : { ...(defaults.chap && { chap: defaults.chap }), allowNoAuth: defaults.allowNoAuth }),
            ...(a.luns && { luns: new Set(a.luns) }),
            allowTargetReset: a.allowTargetReset ?? defaults.allowTargetReset,
          },
        ]),
      );
  }

  /** Whether the target has an access list at all. */
  get restricted(): boolean {
    return this.entries !== undefined;
  }

  /** What this initiator may do here; undefined: it may not log in. */
  accessOf(initiatorName: string): InitiatorAccess | undefined {
    return this.entries ? this.entries.get(initiatorName.toLowerCase()) : this.open;
  }
}
