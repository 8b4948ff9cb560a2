/**
 * Compatibility requirements of the Policy Manager: members work together when they share a
 * member-to-member protocol version and each can read the schema of the configuration the
 * cluster runs. A release N+1 speaks N's protocol and reads N's schema, so N and N+1 run side
 * by side during a rolling upgrade; a member that cannot is refused every role, with the
 * reason in its status, its log and its peers' alarms.
 */

export type VersionRange = readonly [number, number];

export interface Versions {
  readonly protocol: VersionRange;
  readonly schema: VersionRange;
}

export type Verdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

const OK: Verdict = { ok: true };

function overlaps(a: VersionRange, b: VersionRange): boolean {
  return a[0] <= b[1] && b[0] <= a[1];
}

function within(v: number, r: VersionRange): boolean {
  return v >= r[0] && v <= r[1];
}

function range(r: VersionRange): string {
  return r[0] === r[1] ? `${r[0]}` : `${r[0]}–${r[1]}`;
}

/** Can a member with `member` versions work with one with `peer` versions (symmetric)? */
export function protocolVerdict(memberId: string, member: Versions, peerId: string, peer: Versions): Verdict {
  if (overlaps(member.protocol, peer.protocol)) return OK;
  return { ok: false, reason: `${memberId} speaks member protocol ${range(member.protocol)}, ${peerId} speaks ${range(peer.protocol)}: no common version` };
}

/** Can a member with `versions` run the cluster's configuration, written in schema `configSchema` (generation `generation`)? */
export function schemaVerdict(memberId: string, versions: Versions, configSchema: number, generation: number): Verdict {
  if (configSchema === 0 || within(configSchema, versions.schema)) return OK;
  return {
    ok: false,
    reason: `${memberId} reads configuration schema ${range(versions.schema)}, but the cluster's configuration (generation ${generation}) is schema ${configSchema}`,
  };
}

/** The first refusal among verdicts, if any. */
export function firstRefusal(verdicts: readonly Verdict[]): string | undefined {
  for (const v of verdicts) if (!v.ok) return v.reason;
  return undefined;
}
