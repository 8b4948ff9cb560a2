import type { Problems } from './errors.js';
import type { ValidatedSpec } from './device-graph.js';
import type { IscsiConfig } from './schema/iscsi.js';
import { formatListen, type ListenAddress } from './schema/listen.js';
import type { ExportConfig, NbdConfig } from './schema/member-config.js';

/** Checks of the sections that refer to each other: exports → devices, LUNs → exports, listeners. */

/** NBD carries export names as strings of at most 4096 bytes (proto.md, NBD_OPT_GO). */
const MAX_EXPORT_NAME_BYTES = 4096;

export function checkExports(exports: readonly ExportConfig[], graph: ReadonlyMap<string, ValidatedSpec>, problems: Problems): void {
  const partOf = new Map<string, string>();
  for (const [name, { children }] of graph) for (const child of children) partOf.set(child, name);
  const names = new Set<string>();
  exports.forEach((e, i) => {
    const field = `exports[${i}]`;
    if (names.has(e.name)) problems.add(`${field}.name`, `export name ${JSON.stringify(e.name)} is declared twice`);
    names.add(e.name);
    if (Buffer.byteLength(e.name) > MAX_EXPORT_NAME_BYTES) problems.add(`${field}.name`, `must be at most ${MAX_EXPORT_NAME_BYTES} bytes`);
    if (!graph.has(e.device)) {
      problems.add(`${field}.device`, `refers to unknown device ${JSON.stringify(e.device)} (declared: ${[...graph.keys()].join(', ') || 'none'})`);
      return;
    }
    const parent = partOf.get(e.device);
    // A host writing to one replica or path behind its layer's back would corrupt the set.
    if (parent !== undefined) {
      problems.add(`${field}.device`, `${JSON.stringify(e.device)} is part of ${JSON.stringify(parent)}: export ${JSON.stringify(parent)} instead`);
    }
  });
}

/** NBD TLS needs credentials, and an export that needs TLS needs TLS to be on. */
export function checkNbdAccess(nbd: NbdConfig, exports: readonly ExportConfig[], problems: Problems): void {
  const tls = nbd.tls;
  if (tls && tls.certificates === undefined && tls.pskFile === undefined) problems.add('nbd.tls', 'needs certificates, pskFile or both');
  if (tls?.verifyClients && tls.certificates === undefined) problems.add('nbd.tls.verifyClients', 'needs certificates (a directory with ca-cert.pem)');
  if (tls) return;
  exports.forEach((e, i) => {
    if (e.requireTls) problems.add(`exports[${i}].requireTls`, 'needs nbd.tls: without TLS no client could use this export');
    if (e.allow?.identities) problems.add(`exports[${i}].allow.identities`, 'needs nbd.tls: TLS identities exist only over TLS');
  });
}

export function checkListeners(listen: readonly ListenAddress[], field: string, problems: Problems): void {
  const seen = new Set<string>();
  listen.forEach((a, i) => {
    const key = formatListen(a);
    if (seen.has(key)) problems.add(`${field}[${i}]`, `${key} is listed twice`);
    seen.add(key);
  });
}

export function checkIscsi(iscsi: IscsiConfig, exports: readonly ExportConfig[], problems: Problems): void {
  const exportNames = new Set(exports.map((e) => e.name));
  const targetNames = new Set<string>();
  iscsi.targets.forEach((t, i) => {
    const field = `iscsi.targets[${i}]`;
    if (targetNames.has(t.name)) problems.add(`${field}.name`, `target ${t.name} is declared twice`);
    targetNames.add(t.name);
    const luns = new Set<number>();
    t.luns.forEach((l, j) => {
      if (luns.has(l.lun)) problems.add(`${field}.luns[${j}].lun`, `LUN ${l.lun} is mapped twice`);
      luns.add(l.lun);
      if (!exportNames.has(l.export)) problems.add(`${field}.luns[${j}].export`, `no export named ${JSON.stringify(l.export)}`);
    });
    const groups = new Set<number>();
    t.portalGroups.forEach((g, j) => {
      if (groups.has(g.id)) problems.add(`${field}.portalGroups[${j}].id`, `portal group ${g.id} is declared twice`);
      groups.add(g.id);
    });
    if (t.allowNoAuth === false && !t.chap) problems.add(`${field}.allowNoAuth`, 'false needs chap credentials');
    if (t.chap) checkChap(t.chap, `${field}.chap`, problems);
    const initiators = new Set<string>();
    t.acls?.forEach((a, j) => {
      const at = `${field}.acls[${j}]`;
      const name = a.initiator.toLowerCase();
      if (initiators.has(name)) problems.add(`${at}.initiator`, `${a.initiator} is listed twice`);
      initiators.add(name);
      a.luns?.forEach((lun, k) => {
        if (!luns.has(lun)) problems.add(`${at}.luns[${k}]`, `LUN ${lun} is not one of the target's (${[...luns].join(', ')})`);
      });
      if (a.chap) checkChap(a.chap, `${at}.chap`, problems);
    });
  });
  if (iscsi.discoveryChap) checkChap(iscsi.discoveryChap, 'iscsi.discoveryChap', problems);
}

function checkChap(chap: { secret: string; mutualSecret?: string }, field: string, problems: Problems): void {
  // With equal secrets, a rogue target could replay the initiator's own response.
  if (chap.mutualSecret !== undefined && chap.mutualSecret === chap.secret) problems.add(`${field}.mutualSecret`, 'must differ from secret');
}
