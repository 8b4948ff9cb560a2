import { Type, type Static } from '@sinclair/typebox';
import { NonEmpty } from './listen.js';

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
  { id: Type.Integer({ minimum: 1, maximum: 65535 }), portals: Type.Array(Portal, { minItems: 1 }) },
  { additionalProperties: false, description: 'a target portal group (an ALUA group); each portal is a TCP listener' },
);

export const Lun = Type.Object(
  { lun: Type.Integer({ minimum: 0, maximum: 16383 }), export: Type.String({ minLength: 1, description: 'an export declared in exports', 'x-problem': 'a non-empty string' }) },
  { additionalProperties: false },
);

export const AluaPolicy = Type.Union([Type.Literal('active-active'), Type.Literal('active-passive')], {
  default: 'active-active',
  description: 'active-passive: the first portal group is active/optimized, the others standby',
});

export const Target = Type.Object(
  {
    name: Type.String({ pattern: ISCSI_NAME.source, 'x-problem': 'an iSCSI name such as iqn.2026-11.com.example:disk1' }),
    alias: Type.Optional(NonEmpty),
    luns: Type.Array(Lun, { minItems: 1 }),
    chap: Type.Optional(Chap),
    allowNoAuth: Type.Optional(Type.Boolean({ description: 'AuthMethod=None accepted (default: true without chap)' })),
    portalGroups: Type.Optional(Type.Array(PortalGroup, { minItems: 1, default: [{ id: 1, portals: ['127.0.0.1:3260'] }] })),
    aluaPolicy: Type.Optional(AluaPolicy),
  },
  { additionalProperties: false },
);

export const Iscsi = Type.Object(
  {
    targets: Type.Optional(Type.Array(Target, { default: [] })),
    discoveryChap: Type.Optional(Type.Unsafe<Static<typeof Chap>>({ ...Chap, description: 'CHAP required for SendTargets (discovery) sessions' })),
  },
  { additionalProperties: false },
);

export type ChapConfig = Static<typeof Chap>;
export type PortalAddress = { readonly host: string; readonly port: number };
export type PortalGroupConfig = { readonly id: number; readonly portals: readonly PortalAddress[] };
export type LunConfig = Static<typeof Lun>;
export type AluaPolicy = Static<typeof AluaPolicy>;

/** A target as the running configuration holds it: portals as mappings, defaults filled. */
export interface IscsiTargetConfig {
  readonly name: string;
  readonly alias?: string;
  readonly luns: readonly LunConfig[];
  readonly chap?: ChapConfig;
  readonly allowNoAuth?: boolean;
  readonly portalGroups: readonly PortalGroupConfig[];
  readonly aluaPolicy: AluaPolicy;
}

export interface IscsiConfig {
  readonly targets: readonly IscsiTargetConfig[];
  readonly discoveryChap?: ChapConfig;
}

/** `"host:port"`, `"[v6]:port"` or `"host"`; undefined if not that shape. */
export function parsePortal(v: string): PortalAddress | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(v);
  if (!m) return undefined;
  const port = m[3] === undefined ? ISCSI_DEFAULT_PORT : Number(m[3]);
  return port <= 65535 ? { host: m[1] ?? m[2]!, port } : undefined;
}

export function normalizeIscsi(section: Static<typeof Iscsi>): IscsiConfig {
  return {
    targets: (section.targets ?? []).map((t) => ({
      ...t,
      portalGroups: (t.portalGroups ?? [{ id: 1, portals: [DEFAULT_PORTAL] }]).map((g) => ({
        id: g.id,
        portals: g.portals.map((p) => (typeof p === 'string' ? parsePortal(p)! : { host: p.host, port: p.port ?? ISCSI_DEFAULT_PORT })),
      })),
      aluaPolicy: t.aluaPolicy ?? 'active-active',
    })),
    ...(section.discoveryChap && { discoveryChap: section.discoveryChap }),
  };
}
