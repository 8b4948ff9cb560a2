import { hostname } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { checkClusterIscsi } from './cluster-iscsi.js';
import { checkExports, checkIscsi, checkListeners, checkNbdAccess } from './checks.js';
import { checkCluster, normalizeCluster } from './cluster-section.js';
import { checkReplicated } from './replicated-checks.js';
import { checkDeviceRules } from './device-rules.js';
import { deviceGraph, type ValidatedSpec } from './device-graph.js';
import { Problems } from './errors.js';
import type { DeviceSpec } from './schema/devices.js';
import { normalizeIscsi } from './schema/iscsi.js';
import { DEFAULT_NBD_LISTEN, toListenAddress } from './schema/listen.js';
import { MemberConfigSchema, type ConfigDocument, type MemberConfig } from './schema/member-config.js';
import { compile, documentOrder, fieldPosition } from './schema/validate.js';

export interface ValidatedConfig {
  readonly config: MemberConfig;
  /** Every declared device, backends first, with its field and the devices it wraps. */
  readonly graph: ReadonlyMap<string, ValidatedSpec>;
}

export interface ValidateOptions {
  /**
   * The directory of the file the document was read from: relative backing-file paths are
   * resolved against it, so the configuration is stored with absolute paths. Without it a
   * relative path is an error (a stored configuration must not depend on the working
   * directory of whoever starts the member).
   */
  readonly baseDir?: string;
}

const checkDocument = compile<ConfigDocument>(MemberConfigSchema);

/**
 * Check a parsed document (from YAML, JSON, the database or the API) against the schema,
 * fill in its defaults, and check what spans sections (names, references, sizes). Every
 * problem is reported at once in one ConfigError. Nothing is built or opened.
 */
export function validateMemberConfig(doc: unknown, options: ValidateOptions = {}): ValidatedConfig {
  const written = checkDocument(doc);
  const problems = new Problems();
  const config = normalize(written, options, problems);
  const { graph } = checkConfig(config, problems);
  const order = documentOrder(doc);
  problems.throwIfAny((field) => fieldPosition(order, field));
  return { config, graph };
}

function normalize(doc: ConfigDocument, options: ValidateOptions, problems: Problems): MemberConfig {
  const { member, backends, devices, exports, nbd, iscsi, api, cluster, ...rest } = doc;
  if (cluster && nbd?.listen !== undefined && nbd.listen.length > 0) {
    problems.add('nbd.listen', "must be empty with a cluster section: each set's nbd.listen says where its Primary serves");
  }
  return {
    ...rest,
    // One document serves every member of a cluster, so its default name is the cluster's, not
    // this host's: otherwise members on different hosts would store different checksums.
    member: member ?? cluster?.name ?? hostname(),
    backends: (backends ?? []).map((spec, i) => absolutePaths(spec, `backends[${i}]`, options, problems)),
    devices: (devices ?? []).map((spec, i) => absolutePaths(spec, `devices[${i}]`, options, problems)),
    exports: (exports ?? []).map((e) => ({
      name: e.name,
      device: e.device,
      readOnly: e.readOnly ?? false,
      description: e.description ?? '',
      ...(e.requireTls && { requireTls: true }),
      ...(e.allow && { allow: e.allow }),
    })),
    // Without `listen` the default applies (none in a cluster: its sets say where); `listen: []` turns NBD off.
    nbd: {
      ...nbd,
      listen: nbd?.listen !== undefined ? nbd.listen.map(toListenAddress) : cluster ? [] : DEFAULT_NBD_LISTEN,
      ...(nbd?.tls && {
        tls: {
          ...nbd.tls,
          ...(nbd.tls.certificates !== undefined && { certificates: absolute(nbd.tls.certificates, 'nbd.tls.certificates', options, problems) }),
          ...(nbd.tls.pskFile !== undefined && { pskFile: absolute(nbd.tls.pskFile, 'nbd.tls.pskFile', options, problems) }),
        },
      }),
    },
    ...(iscsi !== undefined && { iscsi: normalizeIscsi(iscsi) }),
    ...(api !== undefined && {
      api: {
        listen: (api.listen ?? []).map(toListenAddress),
        ...(api.tls && { tls: { cert: absolute(api.tls.cert, 'api.tls.cert', options, problems), key: absolute(api.tls.key, 'api.tls.key', options, problems) } }),
        openMetrics: api.openMetrics ?? true,
      },
    }),
    ...(cluster !== undefined && { cluster: normalizeCluster(cluster, (p, f) => absolute(p, f, options, problems)) }),
  };
}

function absolutePaths(spec: DeviceSpec, field: string, options: ValidateOptions, problems: Problems): DeviceSpec {
  if (spec.type === 'replicated') {
    const paths = spec.paths && Object.fromEntries(Object.entries(spec.paths).map(([m, p]) => [m, absolute(p, `${field}.paths.${m}`, options, problems)]));
    return { ...spec, path: absolute(spec.path, `${field}.path`, options, problems), ...(paths && { paths }) };
  }
  if (spec.type !== 'file') return spec;
  return { ...spec, path: absolute(spec.path, `${field}.path`, options, problems) };
}

/** A path as stored: absolute, taken from the config file's directory when relative. */
function absolute(path: string, field: string, options: ValidateOptions, problems: Problems): string {
  if (isAbsolute(path)) return path;
  if (options.baseDir === undefined) {
    problems.add(field, `must be an absolute path here (got ${JSON.stringify(path)}; in a config file, relative paths are taken from its directory)`);
    return path;
  }
  return resolve(options.baseDir, path);
}

/** The checks across sections, on a configuration that matches the schema. */
function checkConfig(config: MemberConfig, problems: Problems): { graph: Map<string, ValidatedSpec> } {
  const graph = deviceGraph(allDeviceSpecs(config), deviceFieldOf(config), problems);
  checkDeviceRules(graph, problems);
  checkExports(config.exports, graph, problems);
  checkListeners(config.nbd.listen, 'nbd.listen', problems);
  checkNbdAccess(config.nbd, config.exports, problems);
  if (config.api) checkListeners(config.api.listen, 'api.listen', problems);
  if (config.iscsi) checkIscsi(config.iscsi, config.exports, problems);
  if (config.cluster) checkCluster(config.cluster, config.exports.map((e) => e.name), problems);
  if (config.iscsi) checkClusterIscsi(config.iscsi, config.cluster, problems);
  checkReplicated(graph, config, problems);
  return { graph };
}

/** The field a device spec came from, given its index in `[...backends, ...devices]`. */
export function deviceFieldOf(config: Pick<MemberConfig, 'backends'>): (index: number) => string {
  const n = config.backends.length;
  return (i) => (i < n ? `backends[${i}]` : `devices[${i - n}]`);
}

export function allDeviceSpecs(config: Pick<MemberConfig, 'backends' | 'devices'>): DeviceSpec[] {
  return [...config.backends, ...config.devices];
}

/** Only device declarations, as `devices[i]`: the graph they make, or every problem at once. */
export function validateDevices(specs: readonly unknown[]): ReadonlyMap<string, ValidatedSpec> {
  return validateMemberConfig({ devices: specs, nbd: { listen: [] } }).graph;
}
