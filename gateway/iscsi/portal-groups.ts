import type { AddressInfo } from 'node:net';
import { AluaState } from '../scsi/alua.js';
import type { IscsiTargetConfig } from './target-config.js';

/**
 * Front-end port failover: each target's portal groups are its ALUA target port groups.
 * The first group is the preferred one under active-passive; every group is one SCSI
 * target port (relative port id = its position).
 */
export function aluaStateFor(config: IscsiTargetConfig, transitionMs?: number, explicit = true): AluaState {
  return new AluaState({
    policy: config.aluaPolicy,
    transitionMs,
    explicit,
    groups: config.portalGroups.map((g, i) => ({ id: g.id, ports: [i + 1], preferred: i === 0 })),
  });
}

/** `TargetAddress` value (RFC 7143 §13.9): address:port,tpgt, IPv6 in brackets. */
export function targetAddress(host: string, port: number, tpgt: number): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return `${h}:${port},${tpgt}`;
}

/** The address a listener reports: its bound one, or the connection's own for wildcards. */
export function reportedHost(bound: AddressInfo, localAddress: string | undefined): string {
  const wildcard = bound.address === '0.0.0.0' || bound.address === '::';
  const host = wildcard ? localAddress ?? bound.address : bound.address;
  return host.startsWith('::ffff:') ? host.slice(7) : host;
}
