import { checkBackingFiles } from '../../failover/config/backing-files.js';
import type { ValidatedSpec } from '../../failover/config/device-graph.js';
import { loadConfigFile } from '../../failover/config/file.js';
import type { ClusterConfig } from '../../failover/config/schema/cluster.js';
import { formatListen } from '../../failover/config/schema/listen.js';
import type { ValidatedConfig } from '../../failover/config/validate.js';
import { EXIT_OK, reportError } from './exit.js';
import type { ExportConfig } from '../../failover/config/schema/member-config.js';
import { nbdSecurity } from '../nbd/security.js';

/** `blockgate check-config FILE`: validate and print; never builds or stores anything. */
export async function checkConfig(path: string): Promise<number> {
  try {
    const validated = await loadConfigFile(path);
    await checkBackingFiles(validated);
    nbdSecurity(validated.config); // reads the TLS certificates and PSK file: a bad one is named here
    process.stdout.write(`configuration OK: ${path}\n${describeConfig(validated)}`);
    return EXIT_OK;
  } catch (err) {
    return reportError(err, path);
  }
}

/** How NBD clients are admitted to an export, when it says anything about it. */
function accessOf(e: ExportConfig): string {
  const parts: string[] = [];
  if (e.requireTls) parts.push('TLS only');
  if (e.allow?.addresses) parts.push(`from ${e.allow.addresses.join(', ')}`);
  if (e.allow?.identities) parts.push(`for ${e.allow.identities.map((i) => JSON.stringify(i)).join(', ')}`);
  return parts.length ? ` [NBD: ${parts.join('; ')}]` : '';
}

/** The member, its device graph as trees (top layers first), exports and listeners. */
export function describeConfig({ config, graph }: ValidatedConfig): string {
  const lines = [`member: ${config.member}`];
  if (config.dataDir !== undefined) lines.push(`dataDir: ${config.dataDir}`);
  const children = new Set([...graph.values()].flatMap((v) => v.children));
  lines.push('devices:');
  if (graph.size === 0) lines.push('  (none)');
  for (const [name, v] of graph) if (!children.has(name)) drawTree(graph, v, '  ', '', lines);
  lines.push('exports:');
  if (config.exports.length === 0) lines.push('  (none)');
  for (const e of config.exports) {
    const mode = e.readOnly ? 'read-only' : 'read-write';
    lines.push(`  ${e.name} -> ${e.device} (${mode})${e.description ? ` ${JSON.stringify(e.description)}` : ''}${accessOf(e)}`);
  }
  lines.push(`nbd listen: ${config.nbd.listen.map(formatListen).join(', ') || '(disabled)'}`);
  const tls = config.nbd.tls;
  if (tls) {
    const kinds = [tls.certificates && `certificates in ${tls.certificates}${tls.verifyClients ? ', client certificates verified' : ''}`, tls.pskFile && `PSK keys in ${tls.pskFile}`];
    lines.push(`nbd tls: ${tls.require ? 'required' : 'offered'}; ${kinds.filter(Boolean).join('; ')}`);
  }
  lines.push(`api listen: ${config.api?.listen.map(formatListen).join(', ') || '(disabled)'}`);
  const iscsi = config.iscsi;
  lines.push(`iscsi: ${iscsi ? '' : '(not configured)'}`);
  for (const t of iscsi?.targets ?? []) {
    const portals = t.portalGroups.map((g) => `tpg ${g.id}${g.member ? ` on ${g.member}` : ''}: ${g.portals.map((p) => `${p.host}:${p.port}`).join(', ')}`).join('; ');
    lines.push(`  ${t.name} (${t.aluaPolicy}) ${t.luns.map((l) => `LUN ${l.lun} -> ${l.export}`).join(', ')} [${portals}]`);
  }
  if (config.cluster) describeCluster(config.cluster, lines);
  return lines.join('\n') + '\n';
}

function describeCluster(cluster: ClusterConfig, lines: string[]): void {
  const a = cluster.arbitration;
  const arbiter = a.type === 'file' ? `file lock in ${a.dir}` : `etcd ${a.endpoints.join(', ')} (lease ${a.ttlSeconds} s, fence margin ${a.fenceMarginMs} ms)`;
  lines.push(`cluster: ${cluster.name}, members ${cluster.members.map((m) => m.id).join(', ')}; arbitration: ${arbiter}`);
  for (const s of cluster.sets) {
    const where = s.nbd.listen.map((l) => `${l.host}:${l.port}`).join(', ') || 'no NBD listener';
    const address = s.serviceAddress ? `, service address ${s.serviceAddress.address} on ${s.serviceAddress.interface}` : '';
    lines.push(`  set ${s.name} (${s.composition}): members ${s.members.join(', ')}; exports ${s.exports.join(', ')}; Primary serves NBD on ${where}${address}`);
  }
}

function drawTree(graph: ReadonlyMap<string, ValidatedSpec>, v: ValidatedSpec, indent: string, branch: string, lines: string[]): void {
  lines.push(`${indent}${branch}${summary(v)}`);
  const below = indent + (branch === '' ? '' : branch.startsWith('└') ? '    ' : '│   ');
  v.children.forEach((child, i) => {
    const last = i === v.children.length - 1;
    drawTree(graph, graph.get(child)!, below, last ? '└── ' : '├── ', lines);
  });
}

function summary({ spec, field }: ValidatedSpec): string {
  const settings = Object.entries(spec)
    .filter(([k]) => k !== 'name' && k !== 'type')
    .map(([k, value]) => `${k}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  return `${spec.name} [${spec.type}]${settings.length ? ` ${settings.join(' ')}` : ''}  (${field})`;
}
