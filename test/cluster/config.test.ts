import t from 'tap';
import { join } from 'node:path';
import { validateMemberConfig } from '../../failover/config/validate.js';
import { diffConfigs } from '../../failover/config/diff.js';
import { reloadRefusals } from '../../member/reload-check.js';
import { loadConfigFile } from '../../failover/config/file.js';
import { ROOT } from '../helpers/blockgate-cli.js';

const base = {
  backends: [{ name: 'd', type: 'memory', size: '1MiB' }],
  exports: [{ name: 'd', device: 'd' }],
};
const cluster = (over: Record<string, unknown> = {}, set: Record<string, unknown> = {}) => ({
  ...base,
  cluster: {
    name: 'c',
    members: [{ id: 'm1' }, { id: 'm2' }],
    arbitration: { type: 'file', dir: '/run/x' },
    sets: [{ name: 's', members: ['m1', 'm2'], exports: ['d'], nbd: { listen: ['127.0.0.1:10809'] }, ...set }],
    ...over,
  },
});

t.test('a valid section is filled in and survives a second validation (the stored form)', async (t) => {
  const { config } = validateMemberConfig(cluster());
  t.equal(config.member, 'c', "one document for every member: the default name is the cluster's");
  t.same(config.nbd.listen, [], 'no member-wide NBD listener in a cluster');
  t.match(config.cluster, { sets: [{ composition: 'n-way', nbd: { listen: [{ host: '127.0.0.1', port: 10809 }] } }] });
  t.same(validateMemberConfig(JSON.parse(JSON.stringify(config))).config, config);
  t.notOk('configHistory' in config.cluster!, 'no configHistory unless given: a member of the previous version reads the stored form too');
  t.equal(validateMemberConfig(cluster({ configHistory: 5 })).config.cluster!.configHistory, 5);
  const etcd = validateMemberConfig(cluster({ arbitration: { type: 'etcd', endpoints: ['http://10.0.0.1:2379'] } })).config.cluster!.arbitration;
  t.same(etcd, { type: 'etcd', endpoints: ['http://10.0.0.1:2379'], ttlSeconds: 2, fenceMarginMs: 600 }, 'short lease by default (not the client library’s 60 s)');
});

t.test('mistakes name their field', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [cluster({ arbitration: { type: 'zookeeper' } }), /cluster\.arbitration\.type/],
    [cluster({ arbitration: { type: 'etcd', endpoints: ['10.0.0.1:2379'] } }), /cluster\.arbitration\.endpoints\[0\].*http/],
    [cluster({ arbitration: { type: 'etcd', endpoints: ['http://a:1'], ttlSeconds: 2, fenceMarginMs: 2000 } }), /fenceMarginMs/],
    [cluster({}, { members: ['m1', 'm9'] }), /cluster\.sets\[0\]\.members\[1\]: unknown member "m9"/],
    [cluster({}, { exports: ['nope'] }), /cluster\.sets\[0\]\.exports\[0\]: unknown export/],
    [cluster({}, { composition: 'single' }), /a single set has exactly one member/],
    [cluster({}, { nbdd: {} }), /cluster\.sets\[0\]\.nbdd: unknown key/],
    [cluster({}, { serviceAddress: { address: '10.0.0.5', interface: 'eth0' } }), /serviceAddress\.address: must be ADDRESS\/PREFIX/],
    [cluster({ members: [{ id: 'm1' }, { id: 'm1' }] }), /member "m1" is listed twice/],
    [{ ...cluster(), nbd: { listen: ['127.0.0.1:10809'] } }, /nbd\.listen: must be empty with a cluster section/],
    [cluster({ configHistory: 0 }), /cluster\.configHistory/],
  ];
  for (const [doc, message] of cases) t.throws(() => validateMemberConfig(doc), { message }, String(message));
});

t.test('a hierarchical set: sets of sets, members flattened set by set, the stored form read again', async (t) => {
  const doc = (sets: unknown[]) => ({
    backends: [{ name: 'a', type: 'memory', size: '1MiB' }, { name: 'b', type: 'memory', size: '1MiB' }, { name: 'g', type: 'memory', size: '1MiB' }],
    exports: [{ name: 'a', device: 'a' }, { name: 'b', device: 'b' }, { name: 'g', device: 'g' }],
    cluster: {
      name: 'c',
      members: [{ id: 'm1' }, { id: 'm2' }, { id: 'm3' }, { id: 'm4' }],
      arbitration: { type: 'file', dir: '/run/x' },
      sets,
    },
  });
  const chassis = [
    { name: 'chassisA', members: ['m1', 'm2'], exports: ['a'] },
    { name: 'chassisB', members: ['m3', 'm4'], exports: ['b'] },
  ];
  const { config } = validateMemberConfig(doc([...chassis, { name: 'global', composition: 'hierarchical', members: ['chassisB', 'chassisA'], exports: ['g'] }]));
  const global = config.cluster!.sets.find((s) => s.name === 'global')!;
  t.same(global.members, ['m3', 'm4', 'm1', 'm2'], "its members are its sets' members, set by set in its order");
  t.same(global.children, [
    { set: 'chassisB', members: ['m3', 'm4'] },
    { set: 'chassisA', members: ['m1', 'm2'] },
  ]);
  t.same(validateMemberConfig(JSON.parse(JSON.stringify(config))).config, config, 'the stored form validates to itself');

  const cases: Array<[unknown[], RegExp]> = [
    [[...chassis, { name: 'global', composition: 'hierarchical', members: ['chassisA', 'nope'], exports: ['g'] }], /cluster\.sets\[2\]\.members\[1\]: unknown set "nope"/],
    [[...chassis, { name: 'global', composition: 'hierarchical', members: ['chassisA'], exports: ['g'] }], /cluster\.sets\[2\]\.members: a hierarchical set is made of two or more sets/],
    [[chassis[0], { ...chassis[1], members: ['m2', 'm3'] }, { name: 'global', composition: 'hierarchical', members: ['chassisA', 'chassisB'], exports: ['g'] }], /share a member/],
    [[...chassis, { name: 'x', composition: 'hierarchical', members: ['chassisA', 'y'], exports: ['g'] }, { name: 'y', composition: 'hierarchical', members: ['chassisB', 'x'], exports: ['a'] }], /sets cannot contain each other/],
  ];
  for (const [sets, message] of cases) t.throws(() => validateMemberConfig(doc(sets)), { message }, String(message));
});

t.test('the examples validate', async (t) => {
  for (const name of ['cluster-one-host.yaml', 'cluster-etcd.yaml', 'cluster-shared-nothing.yaml']) {
    const { config } = await loadConfigFile(join(ROOT, 'examples', name));
    t.ok(config.cluster, name);
  }
});

t.test('iSCSI targets of a failover set: one portal group per member, active-passive, redirectable portals', async (t) => {
  const IQN = 'iqn.2026-11.dev.blockgate:d';
  const groups = [
    { id: 1, member: 'm1', portals: ['10.0.3.1:3260'] },
    { id: 2, member: 'm2', portals: ['10.0.3.2:3260'] },
  ];
  const withTarget = (target: Record<string, unknown>, over: Record<string, unknown> = {}) => ({
    ...cluster(over),
    backends: [...base.backends, { name: 'e', type: 'memory', size: '1MiB' }],
    exports: [...base.exports, { name: 'e', device: 'e' }],
    iscsi: { targets: [{ name: IQN, luns: [{ lun: 0, export: 'd' }], portalGroups: groups, ...target }] },
  });
  const { config } = validateMemberConfig(withTarget({}));
  t.match(config.iscsi!.targets[0], { aluaPolicy: 'active-passive', standbyLogin: 'redirect', portalGroups: [{ id: 1, member: 'm1' }, { id: 2, member: 'm2' }] }, 'active-passive and redirect by default across members');

  const cases: Array<[unknown, RegExp]> = [
    [withTarget({ aluaPolicy: 'active-active' }), /iscsi\.targets\[0\]\.aluaPolicy: active-active across cluster members is refused: persistent reservations and COMPARE AND WRITE/],
    [withTarget({ portalGroups: [groups[0]] }), /iscsi\.targets\[0\]\.portalGroups: member "m2" of set "s" has no portal group/],
    [withTarget({ portalGroups: [groups[0], { id: 2, portals: ['10.0.3.2:3260'] }] }), /portalGroups\[1\]\.member: target of set "s": say which member serves this group/],
    [withTarget({ portalGroups: [groups[0], { id: 2, member: 'm9', portals: ['10.0.3.2:3260'] }] }), /portalGroups\[1\]\.member: "m9" is not a member of set "s"/],
    [withTarget({ portalGroups: [groups[0], { id: 2, member: 'm2', portals: ['0.0.0.0:3260'] }] }), /portalGroups\[1\]\.portals\[0\]: other members redirect logins here/],
    [withTarget({ luns: [{ lun: 0, export: 'd' }, { lun: 1, export: 'e' }] }), /luns\[1\]\.export: export "e" is in no failover set.*a target moves with one set/],
    [{ ...base, iscsi: { targets: [{ name: IQN, luns: [{ lun: 0, export: 'd' }], portalGroups: groups }] } }, /portalGroups\[0\]\.member: names a cluster member, but there is no cluster section/],
  ];
  for (const [doc, message] of cases) t.throws(() => validateMemberConfig(doc), { message }, String(message));
  // A wildcard portal is fine where nobody is redirected to it.
  t.doesNotThrow(() => validateMemberConfig(withTarget({ standbyLogin: 'accept', portalGroups: [groups[0], { id: 2, member: 'm2', portals: ['0.0.0.0:3260'] }] })));
});

t.test('shared-nothing devices: one replica per member of the one set that exports them', async (t) => {
  const replicated = (over: Record<string, unknown> = {}) => ({ name: 'r', type: 'replicated', path: '/srv/r.img', size: '1MiB', ...over });
  const doc = (device: Record<string, unknown>, members: unknown[] = [{ id: 'm1', replication: '127.0.0.1:7601' }, { id: 'm2', replication: '127.0.0.1:7602' }], sets?: unknown[]) => ({
    devices: [device],
    exports: [{ name: 'r', device: 'r' }],
    cluster: {
      name: 'c',
      members,
      arbitration: { type: 'file', dir: '/run/x' },
      sets: sets ?? [{ name: 's', members: ['m1', 'm2'], exports: ['r'], nbd: { listen: ['127.0.0.1:10809'] } }],
    },
  });
  const { config } = validateMemberConfig(doc(replicated({ paths: { m2: '/dev/sdb' } })));
  t.match(config.devices[0], { type: 'replicated', path: '/srv/r.img', paths: { m2: '/dev/sdb' } });
  t.equal(config.cluster!.members[0]!.replication, '127.0.0.1:7601');
  const cases: Array<[unknown, RegExp]> = [
    [doc(replicated(), [{ id: 'm1', replication: '127.0.0.1:7601' }, { id: 'm2' }]), /cluster\.members\[1\]\.replication: member m2 keeps a replica of "r"/],
    [doc(replicated(), [{ id: 'm1', replication: 'nowhere' }, { id: 'm2', replication: '127.0.0.1:7602' }]), /cluster\.members\[0\]\.replication: must be HOST:PORT/],
    [doc(replicated({ paths: { m9: '/x' } })), /devices\[0\]\.paths\.m9: m9 is not a member of set "s"/],
    [doc(replicated({ size: 0 })), /devices\[0\]\.size: must be more than 0/],
    [doc(replicated({ sizee: 1 })), /devices\[0\]\.sizee: unknown key/],
    [doc(replicated(), undefined, [{ name: 's', members: ['m1'], exports: ['r'] }]), /set "s" has one member: a replicated device needs two or more/],
    [{ ...doc(replicated()), cluster: undefined }, /devices\[0\]: a replicated device needs a cluster section/],
    [
      { ...doc(replicated()), devices: [replicated(), { name: 'x', type: 'memory', size: '1MiB' }], exports: [{ name: 'x', device: 'x' }], cluster: { ...doc(replicated()).cluster, sets: [{ name: 's', members: ['m1', 'm2'], exports: ['x'] }] } },
      /devices\[0\]: no export serves replicated device "r"/,
    ],
    [
      { ...doc(replicated()), devices: [replicated(), { name: 'm', type: 'mirror', replicas: ['r', 'x'] }, { name: 'x', type: 'memory', size: '1MiB' }], exports: [{ name: 'r', device: 'm' }] },
      /a replicated device is served as it is by its set's Primary: it cannot be wrapped by "m"/,
    ],
  ];
  for (const [d, message] of cases) t.throws(() => validateMemberConfig(d), { message }, String(message));

  // Changed only by a restart: the replication port and the Primary's mirror are set up at start.
  const before = validateMemberConfig(doc(replicated()));
  const next = validateMemberConfig(doc(replicated({ size: '2MiB' })));
  t.match(reloadRefusals(diffConfigs(before, next), before, next, { exports: [], targets: [] }), [
    { field: 'devices[0]', problem: /replicated device r is added, changed or removed only when the member restarts/ },
  ]);
  t.same(reloadRefusals(diffConfigs(before, before), before, before, { exports: [], targets: [] }), [], 'no change, no refusal');
});
