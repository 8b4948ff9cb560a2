import type { InitiatorAclConfig } from './acl.js';
import type { ChapCredentials } from './chap.js';

/*
 * A target's configuration as the iSCSI server takes it. Its own file, importing nothing of
 * the server, so that login routing, portal groups and the target runtime can all name it
 * without importing each other.
 */

export interface PortalConfig {
  readonly host: string;
  readonly port: number;
}

export interface PortalGroupConfig {
  /** Target Portal Group Tag (also the ALUA target port group id). */
  readonly id: number;
  readonly portals: readonly PortalConfig[];
  /** In a cluster: the member that serves this group (every member lists every group). */
  readonly member?: string;
}

export interface IscsiTargetConfig {
  readonly name: string;
  readonly alias?: string;
  readonly luns: readonly { readonly lun: number; readonly export: string }[];
  readonly chap?: ChapCredentials;
  /** Let initiators in without CHAP; default: true when no chap is configured. */
  readonly allowNoAuth?: boolean;
  readonly portalGroups: readonly PortalGroupConfig[];
  readonly aluaPolicy: 'active-active' | 'active-passive';
  /** In a cluster, a login at a non-Primary member: redirected to the Primary, or accepted on a standby path. */
  readonly standbyLogin?: 'redirect' | 'accept';
  /**
   * Let an initiator's TARGET WARM/COLD RESET abort every other initiator's tasks; default
   * false (LIO's tmr_warm_reset / tmr_cold_reset, off unless set): refused as not authorized.
   */
  readonly allowTargetReset?: boolean;
  /** Only these initiators may log in, each with its CHAP, LUNs and reset permission; absent: any. */
  readonly acls?: readonly InitiatorAclConfig[];
}
