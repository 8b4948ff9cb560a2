import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';

/**
 * What members say to each other on the management networks. Every schema admits keys it
 * does not know: a member of the next version may say more, and during a rolling upgrade
 * both must understand what they share.
 */

/** The member-to-member protocol this code speaks, and the oldest it still talks to. */
export const PEER_PROTOCOL = 1;
export const PEER_PROTOCOL_MIN = 1;

/** A member's role in one failover set, as announced. */
export const MemberRoleSchema = Type.Union([Type.Literal('primary'), Type.Literal('secondary'), Type.Literal('alternate'), Type.Literal('none')]);
export type MemberRole = Static<typeof MemberRoleSchema>;

export const BootTypeSchema = Type.Union([Type.Literal('cold'), Type.Literal('restart'), Type.Literal('replacement')]);
export type BootType = Static<typeof BootTypeSchema>;

const Range = Type.Tuple([Type.Integer({ minimum: 0 }), Type.Integer({ minimum: 0 })]);

/**
 * What a member says about itself in every heartbeat and mDNS record, on every network: who
 * it is, which life of it this is, what it can read and speak, what it runs and what it holds.
 */
export const AnnouncementSchema = Type.Object({
  cluster: Type.String(),
  id: Type.String(),
  /** One more at every start of the member (kept in its store). */
  incarnation: Type.Integer({ minimum: 1 }),
  /** Software version (package version). */
  version: Type.String(),
  /** Peer protocols spoken, [oldest, newest]. */
  protocol: Range,
  /** Configuration schema versions read, [oldest, newest]. */
  schema: Range,
  /** The configuration generation it runs and its checksum (0 and '' before it has one). */
  generation: Type.Integer({ minimum: 0 }),
  checksum: Type.String(),
  /** Schema version of that generation. */
  configSchema: Type.Integer({ minimum: 0 }),
  /** `booting` until its boot phase decided; `ready` while it takes part; `stopping` on a planned stop. */
  state: Type.Union([Type.Literal('booting'), Type.Literal('ready'), Type.Literal('stopping')]),
  boot: Type.Optional(BootTypeSchema),
  /** Booted cold and the set is still forming (not every member has joined yet): a member starting now joins the cold start. */
  forming: Type.Optional(Type.Boolean()),
  /** Role per failover set (the cluster set under the cluster's name). */
  roles: Type.Record(Type.String(), MemberRoleSchema),
  /** As Primary of a set: the member it named Secondary. */
  secondaries: Type.Optional(Type.Record(Type.String(), Type.String())),
  /** Why this member takes no role (incompatible, quarantined, catching up…). */
  refused: Type.Optional(Type.String()),
  quarantined: Type.Optional(Type.Boolean()),
  /** Its management API, for forwarding and for operators. */
  api: Type.Optional(Type.String()),
  /** Worst event-loop delay over the last seconds (ms). */
  eventLoopMs: Type.Number({ minimum: 0 }),
});
export type Announcement = Static<typeof AnnouncementSchema>;

export const HeartbeatSchema = Type.Object({
  t: Type.Literal('hb'),
  /** The network it was sent on (the receiver checks the sender's subnet, too). */
  net: Type.String(),
  seq: Type.Integer({ minimum: 0 }),
  a: AnnouncementSchema,
});
export type Heartbeat = Static<typeof HeartbeatSchema>;

export const RequestSchema = Type.Object({
  t: Type.Literal('req'),
  id: Type.Integer({ minimum: 0 }),
  op: Type.String(),
  from: Type.String(),
  /** Sender's wall clock (ms) and a random nonce: a recorded request cannot be replayed later. */
  ts: Type.Number(),
  nonce: Type.String({ minLength: 8, maxLength: 64 }),
  body: Type.Unknown(),
});
export type Request = Static<typeof RequestSchema>;

export const ResponseSchema = Type.Object({
  t: Type.Literal('res'),
  id: Type.Integer({ minimum: 0 }),
  ok: Type.Boolean(),
  body: Type.Optional(Type.Unknown()),
  error: Type.Optional(Type.String()),
  code: Type.Optional(Type.String()),
});
export type Response = Static<typeof ResponseSchema>;

const isHeartbeat = TypeCompiler.Compile(HeartbeatSchema);
const isRequest = TypeCompiler.Compile(RequestSchema);
const isResponse = TypeCompiler.Compile(ResponseSchema);

export type PeerMessage = Heartbeat | Request | Response;

/** The message, if it is one of ours; undefined for anything else (ignored, counted by the caller). */
export function asPeerMessage(value: unknown): PeerMessage | undefined {
  if (isHeartbeat.Check(value)) return value;
  if (isRequest.Check(value)) return value;
  if (isResponse.Check(value)) return value;
  return undefined;
}

/** A request the other side refused or could not run; `code` is stable (ENOTPRIMARY, EUNKNOWNOP…). */
export class PeerRequestError extends Error {
  override readonly name = 'PeerRequestError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
