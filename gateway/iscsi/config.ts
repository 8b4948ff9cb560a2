import type { IscsiConfig } from '../../failover/config/schema/iscsi.js';
import type { PortalConfig } from './target-runtime.js';

/** The same targets served on one portal instead of the configured ones (`serve --iscsi`). */
export function onOnePortal(config: IscsiConfig, portal: PortalConfig): IscsiConfig {
  return {
    ...config,
    targets: config.targets.map((t) => ({ ...t, portalGroups: [{ id: t.portalGroups[0]?.id ?? 1, portals: [portal] }] })),
  };
}
