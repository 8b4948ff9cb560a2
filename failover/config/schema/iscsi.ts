import { Type, type Static } from '@sinclair/typebox';
import { NonEmpty } from './listen.js';
import { ConnectionLimitFields, Milliseconds } from './limits.js';

/** The `iscsi` section: targets, their LUNs (exports), CHAP, portal groups and ALUA policy. */

export const PORTAL_FORMAT = 'portal';
/** The port a portal without one listens on (IANA's iSCSI port). */
export const ISCSI_DEFAULT_PORT = 3260;
export const DEFAULT_PORTAL = { host: '127.0.0.1', port: ISCSI_DEFAULT_PORT } as const;

/** iSCSI names (RFC 7143 §4.2.7.1): iqn., eui. or naa. forms. */
export const ISCSI_NAME = /^(iqn\.\d{4}-\d{2}\.[a-z0-9][a-z0-9.-]*(:[^\s]+)?|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16}([0-9A-Fa-f]{16})?)$/;
/** RFC 7143 §12.1.3: shorter CHAP secrets are guessable offline. */
export const MIN_CHAP_SECRET = 12;

const Secret = Type.String({ minLength: MIN_CHAP_SECRET, 'x-problem': `a string of at least ${MIN_CHAP_SECRET} characters` });

export const Chap = Type.Object(
  { user: NonEmpty, secret: Secret, mutualUser: Type.Optional(NonEmpty), mutualSecret: Type.Optional(Secret) },
  {
    additionalProperties: false,
    dependencies: { mutualUser: ['mutualSecret'], mutualSecret: ['mutualUser'] },
    description: 'CHAP (MD5); mutual CHAP when mutualUser and mutualSecret are given',
  },
);

const PortalMapping = Type.Object(
  { host: NonEmpty, port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, default: ISCSI_DEFAULT_PORT, 'x-problem': 'a port number from 0 to 65535' })) },
  { additionalProperties: false },
);
export const Portal = Type.Union([
  Type.String({ format: PORTAL_FORMAT, 'x-problem': '"host:port", "[v6]:port" or "host" (port 3260)', examples: ['127.0.0.1:3260'] }),
  PortalMapping,
]);

export const PortalGroup = Type.Object(
  {
    id: Type.Integer({ minimum: 1, maximum: 65535 }),
    portals: Type.Array(Portal, { minItems: 1 }),
    member: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$',
        description: "in a cluster: the member whose portals these are (each member serves the set's targets on its own group)",
        'x-problem': 'a cluster member id',
      }),
    ),
  },
  { additionalProperties: false, description: 'a target portal group (an ALUA group); each portal is a TCP listener' },
);

export const StandbyLogin = Type.Union([Type.Literal('redirect'), Type.Literal('accept')], {
  default: 'redirect',
  description:
    "in a cluster, a login at a member that is not the set's Primary: redirect (to the Primary's portal; initiators without ALUA such as libiscsi/qemu) or accept (on a standby path, for ALUA-aware multipath: dm-multipath, VMware, Windows MPIO)",
});

export const Lun = Type.Object(
  { lun: Type.Integer({ minimum: 0, maximum: 16383 }), export: Type.String({ minLength: 1, description: 'an export declared in exports', 'x-problem': 'a non-empty string' }) },
  { additionalProperties: false },
);

export const AluaPolicy = Type.Union([Type.Literal('active-active'), Type.Literal('active-passive')], {
  description:
    "active-passive: the first portal group is active/optimized, the others standby (in a cluster: the Primary's groups). Default: active-active, or active-passive when the groups name cluster members",
});

/** One initiator a target admits (LIO's node ACL). */
export const InitiatorAcl = Type.Object(
  {
    initiator: Type.String({ pattern: ISCSI_NAME.source, description: "the initiator's iSCSI name", 'x-problem': 'an iSCSI name such as iqn.1994-05.com.redhat:host1' }),
    chap: Type.Optional(Type.Unsafe<Static<typeof Chap>>({ ...Chap, description: "this initiator's CHAP credentials, required of it, instead of the target's" })),
    luns: Type.Optional(Type.Array(Type.Integer({ minimum: 0, maximum: 16383 }), { description: 'the LUNs it sees (LUN masking); absent: all' })),
    allowTargetReset: Type.Optional(Type.Boolean({ description: "it may reset the target (default: the target's allowTargetReset)" })),
  },
  { additionalProperties: false },
);

export const Target = Type.Object(
  {
    name: Type.String({ pattern: ISCSI_NAME.source, 'x-problem': 'an iSCSI name such as iqn.2026-11.com.example:disk1' }),
    alias: Type.Optional(NonEmpty),
    luns: Type.Array(Lun, { minItems: 1 }),
    chap: Type.Optional(Chap),
    allowNoAuth: Type.Optional(Type.Boolean({ description: 'AuthMethod=None accepted (default: true without chap)' })),
    portalGroups: Type.Optional(Type.Array(PortalGroup, { minItems: 1, default: [{ id: 1, portals: ['127.0.0.1:3260'] }] })),
    aluaPolicy: Type.Optional(AluaPolicy),
    standbyLogin: Type.Optional(StandbyLogin),
    allowTargetReset: Type.Optional(
      Type.Boolean({ default: false, description: "an initiator's TARGET WARM/COLD RESET may abort every other initiator's tasks (refused by default, as LIO)" }),
    ),
    acls: Type.Optional(Type.Array(InitiatorAcl, { description: 'only these initiators may log in (and discover the target); absent: any' })),
  },
  { additionalProperties: false },
);

export const Iscsi = Type.Object(
  {
    targets: Type.Optional(Type.Array(Target, { default: [] })),
    discoveryChap: Type.Optional(Type.Unsafe<Static<typeof Chap>>({ ...Chap, description: 'CHAP required for SendTargets (discovery) sessions' })),
    loginTimeoutMs: Type.Optional(Milliseconds('a connection that has not logged in after this long is dropped; default 15000 (as LIO)')),
    // RFC 7143 §4.2.2.1 allows up to 2^31 - 1; a few thousand is already generous.
    queueDepth: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096, description: 'commands one session may have outstanding (its CmdSN window); default 128', 'x-problem': 'a whole number from 1 to 4096' })),
    ...ConnectionLimitFields,
  },
  { additionalProperties: false },
);

export type ChapConfig = Static<typeof Chap>;
export type PortalAddress = { readonly host: string; readonly port: number };
export type PortalGroupConfig = { readonly id: number; readonly portals: readonly PortalAddress[]; readonly member?: string };
export type LunConfig = Static<typeof Lun>;
export type AluaPolicy = Static<typeof AluaPolicy>;
export type StandbyLogin = Static<typeof StandbyLogin>;

/** A target as the running configuration holds it: portals as mappings, defaults filled. */
export interface IscsiTargetConfig {
  readonly name: string;
  readonly alias?: string;
  readonly luns: readonly LunConfig[];
  readonly chap?: ChapConfig;
  readonly allowNoAuth?: boolean;
  readonly portalGroups: readonly PortalGroupConfig[];
  readonly aluaPolicy: AluaPolicy;
  /** Filled in for targets whose groups name cluster members. */
  readonly standbyLogin?: StandbyLogin;
  readonly allowTargetReset?: boolean;
  readonly acls?: readonly Static<typeof InitiatorAcl>[];
}

export interface IscsiConfig {
  readonly targets: readonly IscsiTargetConfig[];
  readonly discoveryChap?: ChapConfig;
  /** A connection still logging in after this long is dropped (default 15000, 0 never). */
  readonly loginTimeoutMs?: number;
  /** Commands one session may have outstanding (default 128). */
  readonly queueDepth?: number;
  /** Connections per portal (default 1024) and per initiator address (default 256). */
  readonly maxConnections?: number;
  readonly maxConnectionsPerClient?: number;
}

/** `"host:port"`, `"[v6]:port"` or `"host"`; undefined if not that shape. */
export function parsePortal(v: string): PortalAddress | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(v);
  if (!m) return undefined;
  const port = m[3] === undefined ? ISCSI_DEFAULT_PORT : Number(m[3]);
  return port <= 65535 ? { host: m[1] ?? m[2]!, port } : undefined;
}

function clustered(t: Static<typeof Target>): boolean {
  return t.portalGroups?.some((g) => g.member !== undefined) ?? false;
}

export function normalizeIscsi(section: Static<typeof Iscsi>): IscsiConfig {
  return {
    targets: (section.targets ?? []).map((t) => ({
      ...t,
      portalGroups: (t.portalGroups ?? [{ id: 1, portals: [DEFAULT_PORTAL] as Static<typeof Portal>[] }]).map((g: Static<typeof PortalGroup>) => ({
        id: g.id,
        portals: g.portals.map((p) => (typeof p === 'string' ? parsePortal(p)! : { host: p.host, port: p.port ?? ISCSI_DEFAULT_PORT })),
        ...(g.member !== undefined && { member: g.member }),
      })),
      // Groups on different cluster members are active-passive unless asked otherwise (and refused then).
      aluaPolicy: t.aluaPolicy ?? (clustered(t) ? 'active-passive' : 'active-active'),
      ...((t.standbyLogin !== undefined || clustered(t)) && { standbyLogin: t.standbyLogin ?? 'redirect' }),
    })),
    ...(section.discoveryChap && { discoveryChap: section.discoveryChap }),
    ...(section.loginTimeoutMs !== undefined && { loginTimeoutMs: section.loginTimeoutMs }),
    ...(section.queueDepth !== undefined && { queueDepth: section.queueDepth }),
    ...(section.maxConnections !== undefined && { maxConnections: section.maxConnections }),
    ...(section.maxConnectionsPerClient !== undefined && { maxConnectionsPerClient: section.maxConnectionsPerClient }),
  };
}
