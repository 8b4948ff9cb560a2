import type { MemberConfig } from './schema/member-config.js';
import { validateMemberConfig } from './validate.js';

/** What `blockgate serve` runs when neither --config nor the data directory names a configuration. */
export function demoConfig(): MemberConfig {
  return validateMemberConfig({
    backends: [{ name: 'demo', type: 'memory', size: '1GiB' }],
    exports: [{ name: 'demo', device: 'demo', description: 'blockgate demo: 1 GiB RAM disk (contents are lost on stop)' }],
    nbd: { listen: [{ host: '127.0.0.1', port: 10809 }] },
    api: { listen: ['127.0.0.1:9810'] },
    iscsi: {
      targets: [
        {
          name: 'iqn.2026-11.dev.blockgate:demo',
          luns: [{ lun: 0, export: 'demo' }],
          portalGroups: [{ id: 1, portals: ['127.0.0.1:3260'] }],
        },
      ],
    },
  }).config;
}
