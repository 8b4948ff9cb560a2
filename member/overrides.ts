import type { ListenAddress } from '../failover/config/schema/listen.js';
import type { PortalAddress } from '../failover/config/schema/iscsi.js';
import type { MemberConfig } from '../failover/config/schema/member-config.js';

/** Command-line settings for one run: applied over the configuration, never stored. */
export interface RunOverrides {
  /** Replaces nbd.listen. */
  readonly nbdListen?: readonly ListenAddress[];
  /** Serves every iSCSI target on this one portal instead of its portal groups. */
  readonly iscsiPortal?: PortalAddress;
  /** Replaces api.listen (TLS and the metrics setting stay as configured). */
  readonly apiListen?: ListenAddress;
}

export function withOverrides(config: MemberConfig, o: RunOverrides): MemberConfig {
  return {
    ...config,
    ...(o.nbdListen?.length && { nbd: { listen: o.nbdListen } }),
    ...(o.apiListen && { api: { openMetrics: true, ...config.api, listen: [o.apiListen] } }),
    ...(o.iscsiPortal &&
      config.iscsi && {
        iscsi: {
          ...config.iscsi,
          targets: config.iscsi.targets.map((t) => ({ ...t, portalGroups: [{ id: t.portalGroups[0]?.id ?? 1, portals: [o.iscsiPortal!] }] })),
        },
      }),
  };
}
