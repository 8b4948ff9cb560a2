import t from 'tap';
import { validateMemberConfig } from '../../failover/config/validate.js';
import { describeConfig } from '../../gateway/cli/check-config.js';

t.test('check-config draws layers above the devices they wrap', async (t) => {
  const validated = validateMemberConfig({
    member: 'gw-t',
    backends: [
      { name: 'a', type: 'memory', size: '1MiB' },
      { name: 'b', type: 'memory', size: '1MiB' },
      { name: 'c', type: 'memory', size: '1MiB' },
    ],
    devices: [
      { name: 'inner', type: 'concat', devices: ['a', 'b'] },
      { name: 'top', type: 'concat', devices: ['inner', 'c'] },
    ],
    exports: [{ name: 'top', device: 'top', readOnly: true }],
    nbd: { listen: [] },
  });
  t.equal(
    describeConfig(validated),
    [
      'member: gw-t',
      'devices:',
      '  top [concat] devices=["inner","c"]  (devices[1])',
      '  ├── inner [concat] devices=["a","b"]  (devices[0])',
      '  │   ├── a [memory] size=1MiB  (backends[0])',
      '  │   └── b [memory] size=1MiB  (backends[1])',
      '  └── c [memory] size=1MiB  (backends[2])',
      'exports:',
      '  top -> top (read-only)',
      'nbd listen: (disabled)',
      'api listen: (disabled)',
      'iscsi: (not configured)',
      '',
    ].join('\n'),
  );
});

t.test('a device used by two layers is an error naming the second', async (t) => {
  t.throws(
    () =>
      validateMemberConfig({
        backends: [
          { name: 'a', type: 'memory', size: 512 },
          { name: 'b', type: 'memory', size: 512 },
          { name: 'c', type: 'memory', size: 512 },
        ],
        devices: [
          { name: 'x', type: 'concat', devices: ['a', 'b'] },
          { name: 'y', type: 'concat', devices: ['c', 'a'] },
        ],
      }),
    { name: 'ConfigError', field: 'devices[1].devices[1]', message: /already used by x/ },
  );
});

t.test('exporting a part of a layer is an error naming the export', async (t) => {
  t.throws(
    () =>
      validateMemberConfig({
        backends: [
          { name: 'a', type: 'memory', size: 512 },
          { name: 'b', type: 'memory', size: 512 },
        ],
        devices: [{ name: 'x', type: 'concat', devices: ['a', 'b'] }],
        exports: [{ name: 'x', device: 'x' }, { name: 'raw', device: 'a' }],
      }),
    { name: 'ConfigError', field: 'exports[1].device', message: /"a" is part of "x": export "x" instead/ },
  );
});
