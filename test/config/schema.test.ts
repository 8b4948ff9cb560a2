import t from 'tap';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../failover/config/errors.js';
import { loadConfigFile, parseConfigText, detectFormat } from '../../failover/config/file.js';
import { validateMemberConfig } from '../../failover/config/validate.js';
import { DEFAULT_NBD_LISTEN } from '../../failover/config/schema/listen.js';
import { CONFIG_SCHEMA_VERSION } from '../../failover/config/schema/member-config.js';
import { configJsonSchema } from '../../failover/config/schema/json-schema.js';

const dir = mkdtempSync(join(tmpdir(), 'blockgate-schema-'));

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const YAML_CONFIG = `
member: gw-a
dataDir: ./state
backends:
  - name: disk0
    type: memory
    size: 64MiB
  - name: disk1
    type: memory
    size: 1048576
exports:
  - name: first
    device: disk0
    description: the first disk
  - name: second
    device: disk1
    readOnly: true
nbd:
  listen:
    - host: 127.0.0.1
      port: 10809
    - socket: /run/blockgate/nbd.sock
iscsi:
  targets:
    - name: iqn.2026-11.com.example:first
      luns: [{ lun: 0, export: first }]
      portalGroups: [{ id: 1, portals: ["127.0.0.1:3260", { host: "::1" }] }]
`;

t.test('a valid YAML file loads with its fields and defaults', async (t) => {
  const { config, graph } = await loadConfigFile(write('ok.yaml', YAML_CONFIG));
  t.equal(config.member, 'gw-a');
  t.equal(config.dataDir, './state');
  t.same([...graph.keys()], ['disk0', 'disk1']);
  t.equal(graph.get('disk1')!.field, 'backends[1]');
  t.same(config.exports, [
    { name: 'first', device: 'disk0', readOnly: false, description: 'the first disk' },
    { name: 'second', device: 'disk1', readOnly: true, description: '' },
  ]);
  t.same(config.nbd.listen, [{ host: '127.0.0.1', port: 10809 }, { socket: '/run/blockgate/nbd.sock' }]);
  t.same(
    config.iscsi,
    {
      targets: [
        {
          name: 'iqn.2026-11.com.example:first',
          luns: [{ lun: 0, export: 'first' }],
          portalGroups: [{ id: 1, portals: [{ host: '127.0.0.1', port: 3260 }, { host: '::1', port: 3260 }] }],
          aluaPolicy: 'active-active',
        },
      ],
    },
    'iscsi portals as mappings, defaults filled',
  );
});

t.test('the same document as JSON gives the same configuration', async (t) => {
  const fromYaml = await loadConfigFile(write('same.yaml', YAML_CONFIG));
  const json = JSON.stringify(parseConfigText(YAML_CONFIG, 'x.yaml'));
  const fromJson = await loadConfigFile(write('same.json', json));
  const fromSniffed = await loadConfigFile(write('same.conf', json));
  t.same(fromJson.config, fromYaml.config);
  t.same(fromSniffed.config, fromYaml.config);
  t.equal(detectFormat('x.conf', '  {"a":1}'), 'json');
  t.equal(detectFormat('x.conf', 'a: 1'), 'yaml');
});

t.test('a config with no nbd section listens on the NBD port on localhost; member defaults to the host name', async (t) => {
  const { config } = validateMemberConfig({ backends: [{ name: 'd', type: 'memory', size: 4096 }] });
  t.same(config.nbd.listen, DEFAULT_NBD_LISTEN);
  t.ok(config.member.length > 0);
  t.same(config.exports, []);
  t.same(validateMemberConfig({ nbd: {} }).config.nbd.listen, DEFAULT_NBD_LISTEN, 'nbd without listen: the default');
  t.same(validateMemberConfig({ nbd: { listen: [] } }).config.nbd.listen, [], 'an empty list turns NBD off');
});

function mem(name: string, size: string | number = '1MiB') {
  return { name, type: 'memory', size };
}

/** Each mistake and the field its error must name. */
const MISTAKES: Array<[string, unknown, string, RegExp]> = [
  ['unknown top-level key', { backend: [] }, 'backend', /unknown key \(did you mean backends\?\)/],
  ['config not a mapping', [1, 2], 'config', /mapping/],
  ['backends not a list', { backends: { name: 'x' } }, 'backends', /list/],
  ['backend entry not a mapping', { backends: ['disk'] }, 'backends[0]', /mapping/],
  ['backend without name', { backends: [{ type: 'memory', size: 1 }] }, 'backends[0].name', /is required/],
  ['backend without type', { backends: [{ name: 'a', size: 1 }] }, 'backends[0].type', /is required/],
  ['backend with unknown type', { backends: [{ name: 'a', type: 'floppy' }] }, 'backends[0].type', /unknown type "floppy" \(known: concat, file, memory, mirror, multipath, nbd, replicated, stripe\)/],
  ['backend with bad size', { backends: [{ name: 'a', type: 'memory', size: 'lots' }] }, 'backends[0].size', /size/],
  ['duplicate device name across sections', { backends: [{ name: 'a', type: 'memory', size: 1 }], devices: [{ name: 'a', type: 'memory', size: 1 }] }, 'devices[0].name', /declared twice/],
  ['member with a space', { member: 'my gw' }, 'member', /letters/],
  ['member of wrong type', { member: 7 }, 'member', /letters.*\(got number 7\)/],
  ['export of unknown device', { backends: [{ name: 'a', type: 'memory', size: 1 }], exports: [{ name: 'e', device: 'b' }] }, 'exports[0].device', /unknown device "b"/],
  ['duplicate export name', { backends: [{ name: 'a', type: 'memory', size: 1 }], exports: [{ name: 'e', device: 'a' }, { name: 'e', device: 'a' }] }, 'exports[1].name', /declared twice/],
  ['export readOnly not boolean', { backends: [{ name: 'a', type: 'memory', size: 1 }], exports: [{ name: 'e', device: 'a', readOnly: 'yes' }] }, 'exports[0].readOnly', /true or false/],
  ['export with unknown key', { backends: [{ name: 'a', type: 'memory', size: 1 }], exports: [{ name: 'e', device: 'a', readonly: true }] }, 'exports[0].readonly', /unknown key/],
  ['port out of range', { nbd: { listen: [{ host: '127.0.0.1', port: 70000 }] } }, 'nbd.listen[0].port', /0 to 65535/],
  ['port not a number', { nbd: { listen: [{ host: '127.0.0.1', port: '10809' }] } }, 'nbd.listen[0].port', /port number/],
  ['listen without host', { nbd: { listen: [{ port: 10809 }] } }, 'nbd.listen[0].host', /is required/],
  ['listen with both forms', { nbd: { listen: [{ socket: '/x', port: 1 }] } }, 'nbd.listen[0].port', /unknown key/],
  ['listen twice', { nbd: { listen: [{ socket: '/x' }, { socket: '/x' }] } }, 'nbd.listen[1]', /listed twice/],
  ['nbd listen not a list', { nbd: { listen: { host: 'a', port: 1 } } }, 'nbd.listen', /list/],
  ['nbd with unknown key', { nbd: { port: 1 } }, 'nbd.port', /unknown key/],
  ['iscsi not a mapping', { iscsi: true }, 'iscsi', /mapping/],
  ['iscsi with unknown key', { iscsi: { portals: [] } }, 'iscsi.portals', /unknown key/],
  ['a misspelt required key is named', { backends: [{ name: 'a', type: 'memory', sise: '1G' }] }, 'backends[0].sise', /unknown key \(did you mean size\?\)/],
  ['resync.rate', { backends: [mem('a'), mem('b')], devices: [{ name: 'm', type: 'mirror', replicas: ['a', 'b'], resync: { rate: 5 } }] }, 'devices[0].resync.rate', /unknown key \(allowed: rateMiBps, regionSize\)/],
  ['failureLimit.widnow', { backends: [mem('a'), mem('b')], devices: [{ name: 'm', type: 'mirror', replicas: ['a', 'b'], failureLimit: { failures: 3, widnow: 5 } }] }, 'devices[0].failureLimit.windowMs', /is required/],
  ['marginal.windw', { backends: [mem('a')], devices: [{ name: 'p', type: 'multipath', paths: ['a'], marginal: { failures: 1, windowMs: 5, windw: 1 } }] }, 'devices[0].marginal.windw', /unknown key/],
  ['a memory device of size 0', { backends: [{ name: 'a', type: 'memory', size: 0 }] }, 'backends[0].size', /more than 0/],
  ['a file device of size 0', { backends: [{ name: 'a', type: 'file', path: '/x', size: '0' }] }, 'backends[0].size', /more than 0/],
  ['a relative file path with no file to be relative to', { backends: [{ name: 'a', type: 'file', path: 'disk.img' }] }, 'backends[0].path', /absolute/],
  [
    'a 7 PiB mirror with 4 KiB regions',
    { backends: [mem('a', '7PiB'), mem('b', '7PiB')], devices: [{ name: 'm', type: 'mirror', replicas: ['a', 'b'], resync: { regionSize: '4k' } }] },
    'devices[0].resync.regionSize',
    /needs bitmaps of 224 GiB per replica.*at least 32 MiB/,
  ],
  ['a 7 PiB mirror with the default regions', { backends: [mem('a', '7PiB'), mem('b', '7PiB')], devices: [{ name: 'm', type: 'mirror', replicas: ['a', 'b'] }] }, 'devices[0]', /set resync.regionSize to at least 32 MiB/],
  ['replicas of different sizes', { backends: [mem('a', '1G'), mem('b', '2G')], devices: [{ name: 'm', type: 'mirror', replicas: ['a', 'b'] }] }, 'devices[0].replicas', /same size \(a: 1 GiB, b: 2 GiB\)/],
  ['a schema version from the future', { schemaVersion: 99 }, 'schemaVersion', /schema version this blockgate reads/],
  ['dataDir empty', { dataDir: '' }, 'dataDir', /non-empty/],
];

for (const [what, doc, field, problem] of MISTAKES) {
  t.test(`${what} is an error naming ${field}`, async (t) => {
    const err = (() => {
      try {
        validateMemberConfig(doc);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    t.type(err, ConfigError);
    const named = (err as ConfigError).problems.find((p) => p.field === field);
    t.ok(named, `a problem names ${field} (got: ${(err as Error).message})`);
    t.match(named?.problem, problem);
  });
}

t.test('every mistake is reported at once, each naming its field', async (t) => {
  const doc = {
    backends: [{ name: 'a', type: 'memory', sise: '1G' }, mem('b'), mem('c')],
    devices: [
      { name: 'm', type: 'mirror', replicas: ['b', 'c'], resync: { rate: 5 }, failureLimit: { failures: 3, widnow: 5 } },
      { name: 'p', type: 'multipath', paths: ['a'], marginal: { windw: 1 } },
    ],
    exports: [{ name: 'e', device: 'm', readonly: true }],
    iscsi: { targets: [{ name: 'disk1', luns: [{ lun: 0, export: 'e' }], aluaPolicy: 'both' }] },
  };
  const err = t.throws(() => validateMemberConfig(doc)) as ConfigError;
  t.same(
    err.problems.map((p) => p.field),
    [
      'backends[0].sise',
      'devices[0].resync.rate',
      'devices[0].failureLimit.windowMs',
      'devices[0].failureLimit.widnow',
      'devices[1].marginal.failures',
      'devices[1].marginal.windowMs',
      'devices[1].marginal.windw',
      'exports[0].readonly',
      'iscsi.targets[0].name',
      'iscsi.targets[0].aluaPolicy',
    ],
    'in document order',
  );
  t.notOk(err.problems.some((p) => p.field === 'backends[0].size'), '"size is required" is folded into "sise: did you mean size?"');
  t.match(err.message, /^backends\[0\]\.sise: unknown key \(did you mean size\?\)/);

  const crossed = t.throws(() =>
    validateMemberConfig({
      backends: [mem('a'), mem('a'), mem('c', 0)],
      devices: [{ name: 's', type: 'stripe', devices: ['c', 'ghost'], stripeUnit: 3000 }],
      exports: [{ name: 'e', device: 'nope' }],
    }),
  ) as ConfigError;
  t.same(
    crossed.problems.map((p) => p.field),
    ['backends[1].name', 'backends[2].size', 'devices[0].devices[1]', 'devices[0].stripeUnit', 'exports[0].device'],
    'checks across sections report everything too',
  );
});

t.test('a relative backing-file path is taken from the config file, and kept absolute', async (t) => {
  const sub = join(dir, 'conf.d');
  mkdirSync(sub, { recursive: true });
  const path = join(sub, 'rel.yaml');
  writeFileSync(path, 'backends:\n  - { name: f, type: file, path: disks/f.img, create: true, size: 1MiB }\n  - { name: g, type: file, path: /abs/g.img }\n');
  const { config } = await loadConfigFile(path);
  t.equal((config.backends[0] as { path: string }).path, join(sub, 'disks/f.img'));
  t.equal((config.backends[1] as { path: string }).path, '/abs/g.img');
  // The stored form validates again without knowing where it came from.
  t.same(validateMemberConfig(config).config.backends, config.backends);
});

t.test('the JSON Schema shipped in the package is the one the code declares', async (t) => {
  const shipped = JSON.parse(readFileSync(join(import.meta.dirname, '../../config.schema.json'), 'utf8'));
  t.same(shipped, configJsonSchema(), 'run `npm run config-schema` after changing the schema');
  t.equal(shipped['x-schemaVersion'], CONFIG_SCHEMA_VERSION);
  t.ok(shipped.properties.backends.items.oneOf.length >= 7, 'every device kind is in it');
});

t.test('syntax errors name the file and line', async (t) => {
  const yamlPath = write('broken.yaml', 'backends:\n  - name: a\n    name: b\n');
  await t.rejects(loadConfigFile(yamlPath), { name: 'ConfigError', field: yamlPath, message: /not valid YAML.*[Dd]uplicate|line/ });
  const jsonPath = write('broken.json', '{"backends": [}');
  await t.rejects(loadConfigFile(jsonPath), { name: 'ConfigError', field: jsonPath, message: /not valid JSON/ });
  const missing = join(dir, 'absent.yaml');
  await t.rejects(loadConfigFile(missing), { name: 'ConfigError', field: missing, message: /ENOENT/ });
});

t.test('the shipped examples are valid', async (t) => {
  const names = readdirSync(join(import.meta.dirname, '../../examples'));
  t.ok(names.includes('member.yaml'));
  for (const name of names) {
    const { config } = await loadConfigFile(join(import.meta.dirname, '../../examples', name));
    t.ok(config.exports.length > 0, `${name} exports something`);
  }
});
