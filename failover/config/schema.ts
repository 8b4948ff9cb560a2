import { hostname } from 'node:os';
import { isAbsolute } from 'node:path';
import '../../fabric/kinds.js';
import { ConfigError, validateGraph, type DeviceSpec, type ValidatedSpec } from '../../fabric/graph.js';
import { validateClusterConfig, type ClusterConfig } from '../cluster/config.js';

/**
 * The member configuration document: its shape, its defaults, and the checks that run
 * before anything starts. Every problem is a ConfigError naming the field, e.g.
 * `exports[1].device` or `nbd.listen[0].port`.
 */

export interface TcpListen {
  readonly host: string;
  readonly port: number;
}
export interface UnixListen {
  readonly socket: string;
}
export type ListenAddress = TcpListen | UnixListen;

export interface ExportConfig {
  readonly name: string;
  readonly device: string;
  readonly readOnly: boolean;
  readonly description: string;
}

export interface MemberConfig {
  /** The member's name: logs, config records (`writtenBy`), later cluster membership. */
  readonly member: string;
  /** Where LMDB and device state live; the CLI's --data-dir wins over it. */
  readonly dataDir?: string;
  /** Leaf devices (memory, file, remote…). One namespace with `devices`. */
  readonly backends: readonly DeviceSpec[];
  /** Layers over backends or other layers (mirror, multipath, stripe…). */
  readonly devices: readonly DeviceSpec[];
  readonly exports: readonly ExportConfig[];
  readonly nbd: { readonly listen: readonly ListenAddress[] };
  /**
   * The iSCSI front end's section, kept as written: only checked to be a mapping here.
   * The iSCSI server validates its own fields when the lead wires it into gateway/member.ts.
   */
  readonly iscsi?: Readonly<Record<string, unknown>>;
  /** The management HTTP API (metrics, status, operator actions); off unless listed. */
  readonly api?: ApiConfig;
  /** Members that take over from each other (failover/cluster/config.ts); absent: a lone member. */
  readonly cluster?: ClusterConfig;
}

export interface ApiConfig {
  readonly listen: readonly ListenAddress[];
  /** HTTPS instead of HTTP: PEM files, absolute paths. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** /metrics answers without a token (default true); false: it needs one like every endpoint. */
  readonly openMetrics: boolean;
}

/** The NBD port IANA assigned; used when a config has no `nbd` section. */
export const NBD_DEFAULT_PORT = 10809;
export const DEFAULT_NBD_LISTEN: readonly ListenAddress[] = [{ host: '127.0.0.1', port: NBD_DEFAULT_PORT }];

/**
 * Top-level keys. A subsystem that adds a section (failover sets, API…) adds its key here
 * and a check in validateMemberConfig, so a misspelt key is never silently ignored.
 */
const TOP_LEVEL_KEYS = ['member', 'dataDir', 'backends', 'devices', 'exports', 'nbd', 'iscsi', 'api', 'cluster'] as const;
const EXPORT_KEYS = ['name', 'device', 'readOnly', 'description'] as const;
const MEMBER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

type Mapping = Record<string, unknown>;

function isMapping(v: unknown): v is Mapping {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'a mapping' : `${typeof v} ${JSON.stringify(v)}`;
}

function mapping(v: unknown, field: string): Mapping {
  if (!isMapping(v)) throw new ConfigError(field, `must be a mapping (got ${describe(v)})`);
  return v;
}

function list(v: unknown, field: string): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new ConfigError(field, `must be a list (got ${describe(v)})`);
  return v;
}

function onlyKeys(m: Mapping, allowed: readonly string[], field: string): void {
  for (const key of Object.keys(m)) {
    if (!allowed.includes(key)) {
      const where = field === '' ? key : `${field}.${key}`;
      throw new ConfigError(where, `unknown key (allowed: ${allowed.join(', ')})`);
    }
  }
}

function text(m: Mapping, key: string, field: string, opts: { required: boolean; empty?: boolean }): string | undefined {
  const v = m[key];
  if (v === undefined && !opts.required) return undefined;
  if (typeof v !== 'string' || (v === '' && !opts.empty)) {
    throw new ConfigError(field === '' ? key : `${field}.${key}`, `must be a non-empty string (got ${describe(v)})`);
  }
  return v;
}

function flag(m: Mapping, key: string, field: string): boolean {
  const v = m[key];
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new ConfigError(`${field}.${key}`, `must be true or false (got ${describe(v)})`);
  return v;
}

function deviceSpecs(v: unknown, section: 'backends' | 'devices'): DeviceSpec[] {
  return list(v, section).map((entry, i) => {
    const m = mapping(entry, `${section}[${i}]`);
    text(m, 'name', `${section}[${i}]`, { required: true });
    text(m, 'type', `${section}[${i}]`, { required: true });
    return m as unknown as DeviceSpec;
  });
}

/** A TCP port; 0 asks the kernel for a free one (tests, benchmarks). */
export function checkPort(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) {
    throw new ConfigError(field, `must be a port number from 0 to 65535 (got ${JSON.stringify(v)})`);
  }
  return v;
}

/** `HOST:PORT` or `[V6]:PORT`, as the CLI's --nbd/--iscsi/--api take it; undefined if not that shape. */
export function hostPort(v: string): { host: string; port: string } | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(v) ?? /^([^:/]+):(\d+)$/.exec(v);
  return m ? { host: m[1]!, port: m[2]! } : undefined;
}

function listenAddress(v: unknown, field: string): ListenAddress {
  if (typeof v === 'string') {
    const hp = hostPort(v);
    if (!hp) throw new ConfigError(field, `must be HOST:PORT, [IPV6]:PORT or a mapping (got ${JSON.stringify(v)})`);
    return { host: hp.host, port: checkPort(Number(hp.port), field) };
  }
  const m = mapping(v, field);
  if ('socket' in m) {
    onlyKeys(m, ['socket'], field);
    return { socket: text(m, 'socket', field, { required: true })! };
  }
  onlyKeys(m, ['host', 'port'], field);
  if (!('host' in m) && !('port' in m)) throw new ConfigError(field, 'needs host and port, or socket');
  const host = text(m, 'host', field, { required: true })!;
  return { host, port: checkPort(m.port, `${field}.port`) };
}

function nbdSection(v: unknown): MemberConfig['nbd'] {
  if (v === undefined) return { listen: DEFAULT_NBD_LISTEN };
  const m = mapping(v, 'nbd');
  onlyKeys(m, ['listen'], 'nbd');
  // Without `listen` the default applies; `listen: []` turns NBD off.
  return { listen: m.listen === undefined ? DEFAULT_NBD_LISTEN : listenList(m.listen, 'nbd.listen') };
}

/** The management API listens nowhere unless told: it can change device state. */
function apiSection(v: unknown): MemberConfig['api'] {
  if (v === undefined) return undefined;
  const m = mapping(v, 'api');
  onlyKeys(m, ['listen', 'tls', 'openMetrics'], 'api');
  let tls: ApiConfig['tls'];
  if (m.tls !== undefined) {
    const t = mapping(m.tls, 'api.tls');
    onlyKeys(t, ['cert', 'key'], 'api.tls');
    const [cert, key] = (['cert', 'key'] as const).map((k) => {
      const path = text(t, k, 'api.tls', { required: true })!;
      // The stored configuration outlives the directory it was loaded from.
      if (!isAbsolute(path)) throw new ConfigError(`api.tls.${k}`, `must be an absolute path (got ${JSON.stringify(path)})`);
      return path;
    });
    tls = { cert: cert!, key: key! };
  }
  return {
    listen: listenList(m.listen, 'api.listen'),
    ...(tls && { tls }),
    openMetrics: m.openMetrics === undefined ? true : flag(m, 'openMetrics', 'api'),
  };
}

function listenList(v: unknown, field: string): ListenAddress[] {
  const listen = list(v, field).map((a, i) => listenAddress(a, `${field}[${i}]`));
  const seen = new Set<string>();
  listen.forEach((a, i) => {
    const key = formatListen(a);
    if (seen.has(key)) throw new ConfigError(`${field}[${i}]`, `${key} is listed twice`);
    seen.add(key);
  });
  return listen;
}

function exportsSection(v: unknown, graph: ReadonlyMap<string, ValidatedSpec>): ExportConfig[] {
  const deviceNames = [...graph.keys()];
  const partOf = new Map<string, string>();
  for (const [name, { children }] of graph) for (const child of children) partOf.set(child, name);
  const names = new Set<string>();
  return list(v, 'exports').map((entry, i) => {
    const field = `exports[${i}]`;
    const m = mapping(entry, field);
    onlyKeys(m, EXPORT_KEYS, field);
    const name = text(m, 'name', field, { required: true })!;
    if (names.has(name)) throw new ConfigError(`${field}.name`, `export name ${JSON.stringify(name)} is declared twice`);
    // NBD carries export names as strings of at most 4096 bytes (proto.md, NBD_OPT_GO).
    if (Buffer.byteLength(name) > 4096) throw new ConfigError(`${field}.name`, 'must be at most 4096 bytes');
    names.add(name);
    const device = text(m, 'device', field, { required: true })!;
    if (!graph.has(device)) {
      throw new ConfigError(`${field}.device`, `refers to unknown device ${JSON.stringify(device)} (declared: ${deviceNames.join(', ') || 'none'})`);
    }
    const parent = partOf.get(device);
    // A host writing to one replica or path behind its layer's back would corrupt the set.
    if (parent !== undefined) {
      throw new ConfigError(`${field}.device`, `${JSON.stringify(device)} is part of ${JSON.stringify(parent)}: export ${JSON.stringify(parent)} instead`);
    }
    return {
      name,
      device,
      readOnly: flag(m, 'readOnly', field),
      description: text(m, 'description', field, { required: false, empty: true }) ?? '',
    };
  });
}

export interface ValidatedConfig {
  readonly config: MemberConfig;
  /** Every declared device, backends first, with its field and the devices it wraps. */
  readonly graph: ReadonlyMap<string, ValidatedSpec>;
}

/** The field a device spec came from, given its index in `[...backends, ...devices]`. */
export function deviceFieldOf(config: Pick<MemberConfig, 'backends'>): (index: number) => string {
  const n = config.backends.length;
  return (i) => (i < n ? `backends[${i}]` : `devices[${i - n}]`);
}

export function allDeviceSpecs(config: Pick<MemberConfig, 'backends' | 'devices'>): DeviceSpec[] {
  return [...config.backends, ...config.devices];
}

/**
 * Check a parsed document (from YAML, JSON or the database) and return it with defaults
 * filled in. Nothing is built or opened: device kinds only check their fields.
 */
export function validateMemberConfig(doc: unknown): ValidatedConfig {
  const root = mapping(doc, 'config');
  onlyKeys(root, TOP_LEVEL_KEYS, '');
  // One document serves every member of a cluster, so its default name is the cluster's, not
  // this host's: otherwise members on different hosts would store different checksums.
  const clusterName = isMapping(root.cluster) && typeof root.cluster.name === 'string' ? root.cluster.name : undefined;
  const member = text(root, 'member', '', { required: false }) ?? clusterName ?? hostname();
  if (!MEMBER_NAME.test(member)) throw new ConfigError('member', 'may hold only letters, digits, ".", "_" and "-", starting with a letter or digit');
  const dataDir = text(root, 'dataDir', '', { required: false });
  const backends = deviceSpecs(root.backends, 'backends');
  const devices = deviceSpecs(root.devices, 'devices');
  const graph = validateGraph([...backends, ...devices], { fieldOf: deviceFieldOf({ backends }) });
  const exports = exportsSection(root.exports, graph);
  const cluster = root.cluster === undefined ? undefined : validateClusterConfig(root.cluster, exports.map((e) => e.name));
  // In a cluster each set's Primary serves the set's exports on the set's listeners.
  const nbd = cluster && root.nbd === undefined ? { listen: [] } : nbdSection(root.nbd);
  if (cluster && nbd.listen.length > 0) throw new ConfigError('nbd.listen', "must be empty with a cluster section: each set's nbd.listen says where its Primary serves");
  let iscsi: Mapping | undefined;
  if (root.iscsi !== undefined) iscsi = mapping(root.iscsi, 'iscsi');
  const api = apiSection(root.api);

  const config: MemberConfig = {
    member,
    ...(dataDir !== undefined && { dataDir }),
    backends,
    devices,
    exports,
    nbd,
    ...(iscsi !== undefined && { iscsi }),
    ...(api !== undefined && { api }),
    ...(cluster !== undefined && { cluster }),
  };
  return { config, graph };
}

export function formatListen(a: ListenAddress): string {
  if ('socket' in a) return `unix:${a.socket}`;
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
