/**
 * Live configuration of iSCSI targets on a running `blockgate serve`: a target is added and
 * another removed through the management API while an initiator (libiscsi's iscsi-perf)
 * stays logged in to a third, unchanged one: its session (TSIH, since) lives on, the removed
 * target's session is logged out, iscsi-ls finds the new target and no longer the removed
 * one, and a change to the target in use is refused.
 */
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { memberApi } from '../helpers/api.js';
import { ensureBuilt, startMember } from '../helpers/blockgate-cli.js';
import { runTool, startBackground, tempDir, waitFor } from '../helpers/clients.js';
import type { FrontEndSession } from '../../gateway/sessions.js';

ensureBuilt();

const INITIATOR = 'iqn.2026-11.dev.blockgate:live-initiator';
const KEPT = 'iqn.2026-11.dev.blockgate:live-kept';
const GOING = 'iqn.2026-11.dev.blockgate:live-going';
const ADDED = 'iqn.2026-11.dev.blockgate:live-added';

function config(targets: Array<[string, string[]]>): object {
  const exports = [...new Set(targets.flatMap(([, e]) => e))];
  return {
    member: 'live-iscsi',
    backends: exports.map((e) => ({ name: `d-${e}`, type: 'memory', size: '4MiB' })),
    exports: exports.map((e) => ({ name: e, device: `d-${e}` })),
    nbd: { listen: [] },
    iscsi: { targets: targets.map(([name, luns]) => ({ name, luns: luns.map((e, lun) => ({ lun, export: e })) })) },
  };
}

t.test('an iSCSI target added and another removed live; the session on an unchanged target stays logged in', async (t) => {
  const dir = await tempDir(t, 'member-live-iscsi-');
  const configPath = join(dir, 'member.json');
  await writeFile(configPath, JSON.stringify(config([[KEPT, ['alpha']], [GOING, ['beta']]])));
  const member = startMember(t, ['--config', configPath, '--data-dir', join(dir, 'data')]);
  await member.ready();
  const api = await memberApi(member);
  const portalOf = async (target: string): Promise<string> => {
    const { body } = await api.json<{ exports: Array<{ iscsi: Array<{ target: string; portals: string[] }> }> }>('/api/v1/exports');
    return body.exports.flatMap((e) => e.iscsi).find((l) => l.target === target)!.portals[0]!;
  };
  const sessions = async () => (await api.json<{ sessions: FrontEndSession[] }>('/api/v1/sessions')).body.sessions.filter((s) => s.kind === 'normal' && s.state === 'serving');
  const kept = startBackground('iscsi-perf', ['-i', INITIATOR, '-m', '1', `iscsi://${await portalOf(KEPT)}/${KEPT}/0`]);
  t.teardown(() => kept.stop());
  const going = startBackground('iscsi-perf', ['-i', `${INITIATOR}-2`, '-m', '1', `iscsi://${await portalOf(GOING)}/${GOING}/0`]);
  t.teardown(() => going.stop());
  const before = await waitFor(async () => {
    const s = await sessions();
    return s.some((x) => x.target === KEPT) && s.some((x) => x.target === GOING) ? s : undefined;
  }, 'both initiators logged in');
  const keptSession = before.find((s) => s.target === KEPT)!;

  const next = config([[KEPT, ['alpha']], [ADDED, ['gamma']]]);
  const dry = await api.json<{ changes: string[]; refused: unknown[] }>('/api/v1/config/diff', { method: 'POST', body: { config: next } });
  t.same(
    dry.body.changes.filter((l) => l.includes('iscsi target')).sort(),
    [`+ iscsi target ${ADDED}`, `- iscsi target ${GOING}`].sort(),
    'the diff names the target added and the one removed',
  );
  t.same(dry.body.refused, []);

  const applied = await api.json<{ applied: boolean; generation: number }>('/api/v1/config/apply', { method: 'POST', body: { config: next } });
  t.equal(applied.status, 200, JSON.stringify(applied.body));
  t.equal(applied.body.generation, 2);

  const after = await waitFor(async () => {
    const s = await sessions();
    return s.some((x) => x.target === GOING) ? undefined : s;
  }, 'the removed target’s session logged out');
  t.same(
    after.filter((s) => s.target === KEPT).map((s) => [s.id, s.since]),
    [[keptSession.id, keptSession.since]],
    'the session on the unchanged target is the same one (id and since)',
  );

  const addedPortal = await portalOf(ADDED);
  const ls = await runTool('iscsi-ls', ['-s', '-i', INITIATOR, `iscsi://${addedPortal}`]);
  t.match(ls.stdout, ADDED, 'iscsi-ls finds the added target');
  t.match(ls.stdout, KEPT, 'and the kept one');
  t.notMatch(ls.stdout, GOING, 'not the removed one');
  const inq = await runTool('iscsi-inq', ['-i', INITIATOR, `iscsi://${addedPortal}/${ADDED}/0`]);
  t.match(inq.stdout, /Peripheral Device Type/i, 'the added target’s LUN answers INQUIRY');

  // Changing the target that is in use would log its initiator out: refused, nothing changes.
  const changed = await api.json<{ problems: Array<{ field: string; problem: string }> }>('/api/v1/config/apply', {
    method: 'POST',
    body: { config: config([[KEPT, ['alpha', 'gamma']], [ADDED, ['gamma']]]) },
  });
  t.equal(changed.status, 409, 'a change to a target with a logged-in session is refused');
  t.match(changed.body.problems, [{ field: 'iscsi.targets[0]', problem: new RegExp(`iSCSI target ${KEPT} changes \\(luns\\) while 1 session is logged in`) }]);
  t.equal((await api.json<{ generation: number }>('/api/v1/config')).body.generation, 2, 'not stored');
  t.same(
    (await sessions()).filter((s) => s.target === KEPT).map((s) => s.id),
    [keptSession.id],
    'and the session is still the same one',
  );
  t.equal(kept.child.exitCode, null, 'iscsi-perf on the kept target runs on');
  await kept.stop();
  await going.stop();
  t.equal((await member.terminate()).code, 0);
});
