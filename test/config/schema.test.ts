import t from 'tap';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../fabric/graph.js';
import { loadConfigFile, parseConfigText, detectFormat } from '../../failover/config/file.js';
import { validateMemberConfig, DEFAULT_NBD_LISTEN } from '../../failover/config/schema.js';

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
  portals: ["127.0.0.1:3260"]
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
  t.same(config.iscsi, { portals: ['127.0.0.1:3260'] }, 'iscsi is kept as written');
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

/** Each mistake and the field its error must name. */
const MISTAKES: Array<[string, unknown, string, RegExp]> = [
  ['unknown top-level key', { backend: [] }, 'backend', /unknown key/],
  ['config not a mapping', [1, 2], 'config', /mapping/],
  ['backends not a list', { backends: { name: 'x' } }, 'backends', /list/],
  ['backend entry not a mapping', { backends: ['disk'] }, 'backends[0]', /mapping/],
  ['backend without name', { backends: [{ type: 'memory', size: 1 }] }, 'backends[0].name', /non-empty string/],
  ['backend with unknown type', { backends: [{ name: 'a', type: 'floppy' }] }, 'backends[0].type', /unknown device type "floppy"/],
  ['backend with bad size', { backends: [{ name: 'a', type: 'memory', size: 'lots' }] }, 'backends[0].size', /size/],
  ['duplicate device name across sections', { backends: [{ name: 'a', type: 'memory', size: 1 }], devices: [{ name: 'a', type: 'memory', size: 1 }] }, 'devices[0].name', /declared twice/],
  ['member with a space', { member: 'my gw' }, 'member', /letters/],
  ['member of wrong type', { member: 7 }, 'member', /string/],
  ['export of unknown device', { backends: [{ name: 'a', type: 'memory', size: 1 }], exports: [{ name: 'e', device: 'b' }] }, 'exports[0].device', /unknown device "b"/],
  ['duplicate export name', { backends: [{ name: 'a', type: 'memory', size: 1 }], exports: [{ name: 'e', device: 'a' }, { name: 'e', device: 'a' }] }, 'exports[1].name', /declared twice/],
  ['export readOnly not boolean', { backends: [{ name: 'a', type: 'memory', size: 1 }], exports: [{ name: 'e', device: 'a', readOnly: 'yes' }] }, 'exports[0].readOnly', /true or false/],
  ['export with unknown key', { backends: [{ name: 'a', type: 'memory', size: 1 }], exports: [{ name: 'e', device: 'a', readonly: true }] }, 'exports[0].readonly', /unknown key/],
  ['port out of range', { nbd: { listen: [{ host: '127.0.0.1', port: 70000 }] } }, 'nbd.listen[0].port', /0 to 65535/],
  ['port not a number', { nbd: { listen: [{ host: '127.0.0.1', port: '10809' }] } }, 'nbd.listen[0].port', /port number/],
  ['listen without host', { nbd: { listen: [{ port: 10809 }] } }, 'nbd.listen[0].host', /non-empty string/],
  ['listen with both forms', { nbd: { listen: [{ socket: '/x', port: 1 }] } }, 'nbd.listen[0].port', /unknown key/],
  ['listen twice', { nbd: { listen: [{ socket: '/x' }, { socket: '/x' }] } }, 'nbd.listen[1]', /listed twice/],
  ['nbd listen not a list', { nbd: { listen: { host: 'a', port: 1 } } }, 'nbd.listen', /list/],
  ['nbd with unknown key', { nbd: { port: 1 } }, 'nbd.port', /unknown key/],
  ['iscsi not a mapping', { iscsi: true }, 'iscsi', /mapping/],
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
    t.equal((err as ConfigError).field, field);
    t.match((err as ConfigError).problem, problem);
  });
}

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
