import t from 'tap';
import { fields, registerDeviceKind } from '../../fabric/graph.js';
import { validateMemberConfig } from '../../failover/config/schema.js';
import { describeConfig } from '../../gateway/cli/check-config.js';

// A layer kind known only to this test, so the tree shows nesting whatever kinds exist.
registerDeviceKind('test-join', {
  validate: (spec, field) => void fields.names(spec, 'parts', field, { min: 1 }),
  children: (spec) => spec.parts as string[],
  create: () => Promise.reject(new Error('not built in this test')),
});

t.test('check-config draws layers above the devices they wrap', async (t) => {
  const validated = validateMemberConfig({
    member: 'gw-t',
    backends: [
      { name: 'a', type: 'memory', size: '1MiB' },
      { name: 'b', type: 'memory', size: '1MiB' },
      { name: 'c', type: 'memory', size: '1MiB' },
    ],
    devices: [
      { name: 'inner', type: 'test-join', parts: ['a', 'b'] },
      { name: 'top', type: 'test-join', parts: ['inner', 'c'] },
    ],
    exports: [{ name: 'top', device: 'top', readOnly: true }],
    nbd: { listen: [] },
  });
  t.equal(
    describeConfig(validated),
    [
      'member: gw-t',
      'devices:',
      '  top [test-join] parts=["inner","c"]  (devices[1])',
      '  ├── inner [test-join] parts=["a","b"]  (devices[0])',
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
        backends: [{ name: 'a', type: 'memory', size: 512 }],
        devices: [
          { name: 'x', type: 'test-join', parts: ['a'] },
          { name: 'y', type: 'test-join', parts: ['a'] },
        ],
      }),
    { name: 'ConfigError', field: 'devices[1]', message: /already used by x/ },
  );
});

t.test('exporting a part of a layer is an error naming the export', async (t) => {
  t.throws(
    () =>
      validateMemberConfig({
        backends: [{ name: 'a', type: 'memory', size: 512 }],
        devices: [{ name: 'x', type: 'test-join', parts: ['a'] }],
        exports: [{ name: 'x', device: 'x' }, { name: 'raw', device: 'a' }],
      }),
    { name: 'ConfigError', field: 'exports[1].device', message: /"a" is part of "x": export "x" instead/ },
  );
});
