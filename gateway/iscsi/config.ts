import { ConfigError } from '../../fabric/graph.js';
import type { ChapCredentials } from './chap.js';
import type { IscsiTargetConfig, PortalConfig, PortalGroupConfig } from './target-runtime.js';

/**
 * The `iscsi` section of a member's config: targets, their LUNs (fabric exports), CHAP,
 * portal groups and ALUA policy. Every mistake is a ConfigError naming the field.
 * With no section at all, the demo: the `demo` export as LUN 0 of DEMO_TARGET on 127.0.0.1:3260.
 */

export const DEMO_TARGET = 'iqn.2026-11.dev.blockgate:demo';
export const DEFAULT_PORTAL: PortalConfig = { host: '127.0.0.1', port: 3260 };

export interface IscsiConfig {
  readonly targets: IscsiTargetConfig[];
  readonly discoveryChap?: ChapCredentials;
}

/** iSCSI names (RFC 7143 §4.2.7.1): iqn., eui. or naa. forms. */
const ISCSI_NAME = /^(iqn\.\d{4}-\d{2}\.[a-z0-9][a-z0-9.-]*(:[^\s]+)?|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16}([0-9A-Fa-f]{16})?)$/;
/** RFC 7143 §12.1.3: shorter CHAP secrets are guessable offline. */
const MIN_CHAP_SECRET = 12;

type Obj = Record<string, unknown>;

function object(v: unknown, field: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(field, 'must be a mapping');
  return v as Obj;
}

function list(v: unknown, field: string, min = 0): unknown[] {
  if (!Array.isArray(v)) throw new ConfigError(field, 'must be a list');
  if (v.length < min) throw new ConfigError(field, `needs at least ${min} entr${min === 1 ? 'y' : 'ies'}`);
  return v;
}

function str(o: Obj, key: string, field: string): string;
function str(o: Obj, key: string, field: string, optional: true): string | undefined;
function str(o: Obj, key: string, field: string, optional = false): string | undefined {
  const v = o[key];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string' || v === '') throw new ConfigError(`${field}.${key}`, 'must be a non-empty string');
  return v;
}

function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ConfigError(field, `must be an integer from ${min} to ${max}`);
  return v;
}

function knownKeys(o: Obj, field: string, keys: readonly string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw new ConfigError(`${field}.${k}`, `unknown field (known: ${keys.join(', ')})`);
}

function chap(v: unknown, field: string): ChapCredentials | undefined {
  if (v === undefined) return undefined;
  const o = object(v, field);
  knownKeys(o, field, ['user', 'secret', 'mutualUser', 'mutualSecret']);
  const user = str(o, 'user', field);
  const secret = str(o, 'secret', field);
  if (secret.length < MIN_CHAP_SECRET) throw new ConfigError(`${field}.secret`, `must be at least ${MIN_CHAP_SECRET} characters`);
  const mutualUser = str(o, 'mutualUser', field, true);
  const mutualSecret = str(o, 'mutualSecret', field, true);
  if ((mutualUser === undefined) !== (mutualSecret === undefined)) throw new ConfigError(field, 'mutualUser and mutualSecret go together');
  if (mutualSecret !== undefined) {
    if (mutualSecret.length < MIN_CHAP_SECRET) throw new ConfigError(`${field}.mutualSecret`, `must be at least ${MIN_CHAP_SECRET} characters`);
    if (mutualSecret === secret) throw new ConfigError(`${field}.mutualSecret`, 'must differ from secret');
  }
  return { user, secret, mutualUser, mutualSecret };
}

/** A portal as { host, port } or "host:port" / "[v6]:port" / "host" (port 3260). */
function portal(v: unknown, field: string): PortalConfig {
  if (typeof v === 'string') {
    const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(v);
    if (!m) throw new ConfigError(field, `must be "host:port" (got ${JSON.stringify(v)})`);
    return { host: m[1] ?? m[2]!, port: m[3] === undefined ? DEFAULT_PORTAL.port : int(Number(m[3]), field, 0, 65535) };
  }
  const o = object(v, field);
  knownKeys(o, field, ['host', 'port']);
  return { host: str(o, 'host', field), port: o.port === undefined ? DEFAULT_PORTAL.port : int(o.port, `${field}.port`, 0, 65535) };
}

function portalGroups(v: unknown, field: string): PortalGroupConfig[] {
  if (v === undefined) return [{ id: 1, portals: [DEFAULT_PORTAL] }];
  const groups = list(v, field, 1).map((g, i): PortalGroupConfig => {
    const f = `${field}[${i}]`;
    const o = object(g, f);
    knownKeys(o, f, ['id', 'portals']);
    return { id: int(o.id, `${f}.id`, 1, 65535), portals: list(o.portals, `${f}.portals`, 1).map((p, j) => portal(p, `${f}.portals[${j}]`)) };
  });
  const ids = new Set<number>();
  groups.forEach((g, i) => {
    if (ids.has(g.id)) throw new ConfigError(`${field}[${i}].id`, `portal group ${g.id} is declared twice`);
    ids.add(g.id);
  });
  return groups;
}

function target(v: unknown, field: string): IscsiTargetConfig {
  const o = object(v, field);
  knownKeys(o, field, ['name', 'alias', 'luns', 'chap', 'allowNoAuth', 'portalGroups', 'aluaPolicy']);
  const name = str(o, 'name', field);
  if (!ISCSI_NAME.test(name)) throw new ConfigError(`${field}.name`, `must be an iSCSI name such as iqn.2026-11.com.example:disk1 (got ${JSON.stringify(name)})`);
  const seen = new Set<number>();
  const luns = list(o.luns, `${field}.luns`, 1).map((l, i) => {
    const f = `${field}.luns[${i}]`;
    const lo = object(l, f);
    knownKeys(lo, f, ['lun', 'export']);
    const lun = int(lo.lun, `${f}.lun`, 0, 16383);
    if (seen.has(lun)) throw new ConfigError(`${f}.lun`, `LUN ${lun} is mapped twice`);
    seen.add(lun);
    return { lun, export: str(lo, 'export', f) };
  });
  const allowNoAuth = o.allowNoAuth;
  if (allowNoAuth !== undefined && typeof allowNoAuth !== 'boolean') throw new ConfigError(`${field}.allowNoAuth`, 'must be true or false');
  const credentials = chap(o.chap, `${field}.chap`);
  if (allowNoAuth === false && !credentials) throw new ConfigError(`${field}.allowNoAuth`, 'false needs chap credentials');
  const policy = o.aluaPolicy ?? 'active-active';
  if (policy !== 'active-active' && policy !== 'active-passive') {
    throw new ConfigError(`${field}.aluaPolicy`, `must be one of active-active, active-passive (got ${JSON.stringify(policy)})`);
  }
  return {
    name,
    alias: str(o, 'alias', field, true),
    luns,
    chap: credentials,
    allowNoAuth: allowNoAuth as boolean | undefined,
    portalGroups: portalGroups(o.portalGroups, `${field}.portalGroups`),
    aluaPolicy: policy,
  };
}

export function parseIscsiConfig(raw: unknown, field: string, options: { demoExport?: string } = {}): IscsiConfig {
  if (raw === undefined || raw === null) {
    return {
      targets: [{ name: DEMO_TARGET, luns: [{ lun: 0, export: options.demoExport ?? 'demo' }], portalGroups: [{ id: 1, portals: [DEFAULT_PORTAL] }], aluaPolicy: 'active-active' }],
    };
  }
  const o = object(raw, field);
  knownKeys(o, field, ['targets', 'discoveryChap']);
  const targets = list(o.targets ?? [], `${field}.targets`).map((t, i) => target(t, `${field}.targets[${i}]`));
  const names = new Set<string>();
  targets.forEach((t, i) => {
    if (names.has(t.name)) throw new ConfigError(`${field}.targets[${i}].name`, `target ${t.name} is declared twice`);
    names.add(t.name);
  });
  return { targets, discoveryChap: chap(o.discoveryChap, `${field}.discoveryChap`) };
}

/**
 * The member config's iSCSI targets, or undefined when it has no `iscsi` section. Checks
 * that every LUN names a declared export, so a bad mapping stops start-up before anything
 * is built.
 */
export function iscsiConfigOf(config: { readonly iscsi?: unknown; readonly exports: readonly { readonly name: string }[] }): IscsiConfig | undefined {
  if (config.iscsi === undefined) return undefined;
  const parsed = parseIscsiConfig(config.iscsi, 'iscsi');
  const exportNames = new Set(config.exports.map((e) => e.name));
  parsed.targets.forEach((t, i) =>
    t.luns.forEach((l, j) => {
      if (!exportNames.has(l.export)) throw new ConfigError(`iscsi.targets[${i}].luns[${j}].export`, `no export named ${JSON.stringify(l.export)}`);
    }),
  );
  return parsed;
}

/** The same targets served on one portal instead of the configured ones (`serve --iscsi`). */
export function onOnePortal(config: IscsiConfig, portal: PortalConfig): IscsiConfig {
  return {
    ...config,
    targets: config.targets.map((t) => ({ ...t, portalGroups: [{ id: t.portalGroups[0]?.id ?? 1, portals: [portal] }] })),
  };
}
