import { ConfigError } from '../../fabric/graph.js';

/**
 * The `cluster:` section: which members form the cluster, how they arbitrate, and the
 * failover sets whose Primary serves a group of exports. Without it a member runs alone,
 * exactly as before. One document for every member: a member learns which one it is from
 * `serve --member ID`.
 *
 *   cluster:
 *     name: c1
 *     members: [{ id: m1 }, { id: m2 }, { id: m3 }]
 *     arbitration: { type: file, dir: /run/blockgate/c1 }      # one host
 *     # arbitration: { type: etcd, endpoints: [http://10.0.1.1:2379, …], ttlSeconds: 2 }
 *     sets:
 *       - name: disks
 *         members: [m1, m2, m3]       # the order is the preference at a cold start
 *         exports: [disk]
 *         nbd: { listen: ["127.0.0.1:10809"] }   # where the set's Primary serves
 *         serviceAddress: { address: 10.3.0.100/24, interface: eth-f }   # optional, moved on failover
 */

export interface ClusterMemberConfig {
  readonly id: string;
}

export type ArbitrationConfig =
  | { readonly type: 'file'; readonly dir: string }
  | { readonly type: 'etcd'; readonly endpoints: readonly string[]; readonly ttlSeconds: number; readonly fenceMarginMs: number };

export interface ServiceAddressConfig {
  /** `ADDRESS/PREFIX`, added to `interface` on the Primary and removed when it stops. */
  readonly address: string;
  readonly interface: string;
}

export interface SetListen {
  readonly host: string;
  readonly port: number;
}

export type Composition = 'single' | 'n-way';

export interface FailoverSetConfig {
  readonly name: string;
  readonly composition: Composition;
  readonly members: readonly string[];
  readonly exports: readonly string[];
  readonly nbd: { readonly listen: readonly SetListen[] };
  readonly serviceAddress?: ServiceAddressConfig;
}

export interface ClusterConfig {
  readonly name: string;
  readonly members: readonly ClusterMemberConfig[];
  readonly arbitration: ArbitrationConfig;
  readonly sets: readonly FailoverSetConfig[];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
type Mapping = Record<string, unknown>;

function mapping(v: unknown, field: string): Mapping {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(field, `must be a mapping (got ${JSON.stringify(v)})`);
  return v as Mapping;
}

function onlyKeys(m: Mapping, allowed: readonly string[], field: string): void {
  for (const key of Object.keys(m)) if (!allowed.includes(key)) throw new ConfigError(`${field}.${key}`, `unknown key (allowed: ${allowed.join(', ')})`);
}

function list(v: unknown, field: string, min = 0): unknown[] {
  if (!Array.isArray(v)) throw new ConfigError(field, `must be a list (got ${JSON.stringify(v)})`);
  if (v.length < min) throw new ConfigError(field, `needs at least ${min} entr${min === 1 ? 'y' : 'ies'}`);
  return v;
}

function name(v: unknown, field: string): string {
  if (typeof v !== 'string' || !NAME.test(v)) throw new ConfigError(field, `must be a name of letters, digits, '.', '_' and '-' (got ${JSON.stringify(v)})`);
  return v;
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v === '') throw new ConfigError(field, `must be a non-empty string (got ${JSON.stringify(v)})`);
  return v;
}

function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ConfigError(field, `must be a whole number from ${min} to ${max} (got ${JSON.stringify(v)})`);
  return v;
}

function unique(names: readonly string[], field: string, what: string): void {
  const seen = new Set<string>();
  names.forEach((n, i) => {
    if (seen.has(n)) throw new ConfigError(`${field}[${i}]`, `${what} ${JSON.stringify(n)} is listed twice`);
    seen.add(n);
  });
}

function arbitration(v: unknown, field: string): ArbitrationConfig {
  const m = mapping(v, field);
  if (m.type === 'file') {
    onlyKeys(m, ['type', 'dir'], field);
    return { type: 'file', dir: str(m.dir, `${field}.dir`) };
  }
  if (m.type === 'etcd') {
    onlyKeys(m, ['type', 'endpoints', 'ttlSeconds', 'fenceMarginMs'], field);
    const endpoints = list(m.endpoints, `${field}.endpoints`, 1).map((e, i) => {
      const s = str(e, `${field}.endpoints[${i}]`);
      if (!/^https?:\/\//.test(s)) throw new ConfigError(`${field}.endpoints[${i}]`, `must be an http:// or https:// URL (got ${JSON.stringify(s)})`);
      return s;
    });
    const ttlSeconds = m.ttlSeconds === undefined ? 2 : int(m.ttlSeconds, `${field}.ttlSeconds`, 1, 60);
    const fenceMarginMs = m.fenceMarginMs === undefined ? Math.min(600, ttlSeconds * 300) : int(m.fenceMarginMs, `${field}.fenceMarginMs`, 1, ttlSeconds * 1000 - 1);
    return { type: 'etcd', endpoints, ttlSeconds, fenceMarginMs };
  }
  throw new ConfigError(`${field}.type`, `must be "file" (members on one host) or "etcd" (got ${JSON.stringify(m.type)})`);
}

/** `HOST:PORT` or `{host, port}` (the stored, validated form). */
function listen(v: unknown, field: string): SetListen {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const m = v as Mapping;
    onlyKeys(m, ['host', 'port'], field);
    return { host: str(m.host, `${field}.host`), port: int(m.port, `${field}.port`, 0, 65535) };
  }
  const s = str(v, field);
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:/]+):(\d+)$/.exec(s);
  if (!m) throw new ConfigError(field, `must be HOST:PORT or [IPV6]:PORT (got ${JSON.stringify(s)})`);
  return { host: m[1]!, port: int(Number(m[2]), field, 0, 65535) };
}

function serviceAddress(v: unknown, field: string): ServiceAddressConfig {
  const m = mapping(v, field);
  onlyKeys(m, ['address', 'interface'], field);
  const address = str(m.address, `${field}.address`);
  if (!/^[0-9.]+\/\d{1,2}$|^[0-9a-fA-F:]+\/\d{1,3}$/.test(address)) throw new ConfigError(`${field}.address`, `must be ADDRESS/PREFIX, e.g. 10.0.3.100/24 (got ${JSON.stringify(address)})`);
  return { address, interface: str(m.interface, `${field}.interface`) };
}

/** Check the section against the rest of the document (its export names). */
export function validateClusterConfig(v: unknown, exportNames: readonly string[]): ClusterConfig {
  const field = 'cluster';
  const m = mapping(v, field);
  onlyKeys(m, ['name', 'members', 'arbitration', 'sets'], field);
  const members = list(m.members, `${field}.members`, 1).map((e, i) => {
    const f = `${field}.members[${i}]`;
    const mm = mapping(e, f);
    onlyKeys(mm, ['id'], f);
    return { id: name(mm.id, `${f}.id`) };
  });
  unique(
    members.map((x) => x.id),
    `${field}.members`,
    'member',
  );
  const ids = new Set(members.map((x) => x.id));
  const owner = new Map<string, string>();
  const sets = list(m.sets, `${field}.sets`, 1).map((e, i): FailoverSetConfig => {
    const f = `${field}.sets[${i}]`;
    const s = mapping(e, f);
    onlyKeys(s, ['name', 'composition', 'members', 'exports', 'nbd', 'serviceAddress'], f);
    const setName = name(s.name, `${f}.name`);
    const setMembers = list(s.members, `${f}.members`, 1).map((x, j) => {
      const id = name(x, `${f}.members[${j}]`);
      if (!ids.has(id)) throw new ConfigError(`${f}.members[${j}]`, `unknown member ${JSON.stringify(id)} (cluster.members: ${[...ids].join(', ')})`);
      return id;
    });
    unique(setMembers, `${f}.members`, 'member');
    const composition = s.composition === undefined ? (setMembers.length === 1 ? 'single' : 'n-way') : s.composition;
    if (composition !== 'single' && composition !== 'n-way') throw new ConfigError(`${f}.composition`, `must be "single" or "n-way" (got ${JSON.stringify(composition)})`);
    if (composition === 'single' && setMembers.length !== 1) throw new ConfigError(`${f}.members`, 'a single set has exactly one member');
    const exports = list(s.exports, `${f}.exports`, 1).map((x, j) => {
      const ex = str(x, `${f}.exports[${j}]`);
      if (!exportNames.includes(ex)) throw new ConfigError(`${f}.exports[${j}]`, `unknown export ${JSON.stringify(ex)} (exports: ${exportNames.join(', ') || 'none'})`);
      const other = owner.get(ex);
      if (other !== undefined) throw new ConfigError(`${f}.exports[${j}]`, `export ${JSON.stringify(ex)} already belongs to set ${JSON.stringify(other)}`);
      owner.set(ex, setName);
      return ex;
    });
    const nbd = mapping(s.nbd ?? { listen: [] }, `${f}.nbd`);
    onlyKeys(nbd, ['listen'], `${f}.nbd`);
    const setListen = list(nbd.listen ?? [], `${f}.nbd.listen`).map((x, j) => listen(x, `${f}.nbd.listen[${j}]`));
    return {
      name: setName,
      composition,
      members: setMembers,
      exports,
      nbd: { listen: setListen },
      ...(s.serviceAddress !== undefined && { serviceAddress: serviceAddress(s.serviceAddress, `${f}.serviceAddress`) }),
    };
  });
  unique(
    sets.map((s) => s.name),
    `${field}.sets`,
    'set',
  );
  return { name: name(m.name, `${field}.name`), members, arbitration: arbitration(m.arbitration, `${field}.arbitration`), sets };
}
