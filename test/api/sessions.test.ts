import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { memberApi } from '../helpers/api.js';
import { ensureBuilt, startMember } from '../helpers/blockgate-cli.js';
import { tempDir, waitFor } from '../helpers/clients.js';
import { startIdleClients } from '../helpers/idle-clients.js';
import type { FrontEndSession } from '../../gateway/sessions.js';

ensureBuilt();

const TARGET = 'iqn.2026-11.dev.blockgate:ops-sessions';
const INITIATOR = 'iqn.2026-11.dev.blockgate:ops-initiator';

t.test('GET /api/v1/sessions lists connected NBD clients and iSCSI sessions, and forgets them when they go', async (t) => {
  const dir = await tempDir(t, 'blockgate-ops-sessions-');
  const configPath = join(dir, 'member.json');
  await writeFile(
    configPath,
    JSON.stringify({
      member: 'sess',
      backends: [
        { name: 'a', type: 'memory', size: '4MiB' },
        { name: 'b', type: 'memory', size: '4MiB' },
      ],
      exports: [
        { name: 'alpha', device: 'a' },
        { name: 'beta', device: 'b' },
      ],
      nbd: { listen: ['127.0.0.1:0'] },
      iscsi: { targets: [{ name: TARGET, luns: [{ lun: 0, export: 'alpha' }, { lun: 3, export: 'beta' }] }] },
    }),
  );
  const member = startMember(t, ['--config', configPath, '--data-dir', join(dir, 'data')]);
  const listen = await member.ready();
  const api = await memberApi(member);
  const list = async (): Promise<FrontEndSession[]> => (await api.json<{ sessions: FrontEndSession[] }>('/api/v1/sessions')).body.sessions;
  t.same(await list(), [], 'nobody connected yet');
  const exports = (await api.json<{ exports: Array<{ name: string; size: number; nbd: string[]; iscsi: Array<{ target: string; lun: number; portals: string[] }> }> }>('/api/v1/exports')).body.exports;
  t.same(
    exports.map((e) => [e.name, e.size, e.nbd, e.iscsi]),
    [
      ['alpha', 4 * 1024 * 1024, listen.nbd, [{ target: TARGET, lun: 0, portals: [listen.iscsi![0]!.split(' ')[0]] }]],
      ['beta', 4 * 1024 * 1024, listen.nbd, [{ target: TARGET, lun: 3, portals: [listen.iscsi![0]!.split(' ')[0]] }]],
    ],
    'GET /api/v1/exports: size, NBD listeners and the LUN-to-export map',
  );
  t.equal((await api.request('/api/v1/sessions', { token: null })).status, 401, 'the session list needs a token');

  const before = Date.now();
  const { nbd, iscsi, portal } = startIdleClients(t, listen, { exportName: 'beta', target: TARGET, lun: 3, initiator: INITIATOR });

  const sessions = await waitFor(async () => {
    const s = await list();
    return s.some((x) => x.protocol === 'nbd' && x.state === 'serving') && s.some((x) => x.protocol === 'iscsi' && x.kind === 'normal' && x.state === 'serving') ? s : undefined;
  }, 'both clients in the session list');
  const n = sessions.find((s) => s.protocol === 'nbd')!;
  t.same(n.exports, ['beta'], 'the NBD client reached export beta');
  t.equal(n.connections.length, 1);
  t.equal(n.connections[0]!.portal, listen.nbd![0], 'through the NBD listener');
  t.match(n.connections[0]!.client, /^127\.0\.0\.1:\d+$/);
  t.ok(Date.parse(n.since) >= before - 1000 && Date.parse(n.since) <= Date.now(), 'since: when it connected');

  const i = sessions.find((s) => s.protocol === 'iscsi' && s.kind === 'normal')!;
  t.equal(i.initiator, INITIATOR, 'the initiator name');
  t.equal(i.target, TARGET);
  t.match(i.isid, /^[0-9a-f]{12}$/i);
  t.same(i.luns, [{ lun: 0, export: 'alpha' }, { lun: 3, export: 'beta' }], 'the target’s LUN map');
  t.same(i.exports, ['alpha', 'beta']);
  t.equal(i.connections[0]!.portal, portal, 'the portal it logged in through');
  t.ok(Date.parse(i.since) >= before - 1000);

  await nbd.stop();
  await waitFor(async () => !(await list()).some((s) => s.protocol === 'nbd'), 'the NBD client gone from the list');
  await iscsi.stop();
  await waitFor(async () => !(await list()).some((s) => s.protocol === 'iscsi' && s.kind === 'normal'), 'the iSCSI session gone from the list');
  t.pass('both disappear when the clients leave');
  t.equal((await member.terminate()).code, 0);
});
