import t from 'tap';
import { join } from 'node:path';
import { CLI, ensureBuilt } from '../helpers/blockgate-cli.js';
import { API_PORT, eventually } from '../helpers/cluster-net.js';
import { alternateOf, NetCluster, primaryOf, SET } from '../helpers/net-cluster.js';
import { nsExec } from '../helpers/netns.js';

/**
 * The Policy Manager's refusals and the Boot Service's catch-up between three member hosts
 * with management networks (cluster-net.ts): a member whose configuration schema is
 * incompatible is refused a role with a clear reason (version N+1 is not), a member that
 * crashes past its failure limit is quarantined until an operator clears it, and a member
 * restarted after a change catches up with it before it takes a role. One topology and one
 * set of members for the file; each test leaves the cluster running for the next.
 */

ensureBuilt();
// Room for a loaded machine (member starts slow down most); the file takes 1-2 minutes on a quiet one.
t.setTimeout(600_000);
let net: NetCluster;
/** One crash is tolerated, the second within the window quarantines (fewer restarts to prove the limit). */
const FAILURE_LIMIT = { failures: 1, windowMs: 600_000 };

t.before(async () => {
  net = await NetCluster.create(t, 'clupol', 'clu-policy-', { failureLimit: FAILURE_LIMIT });
  await net.startAll();
  await net.settledRoles();
});

const roleOf = async (id: string): Promise<string> => (await net.setOf(id)).role;

t.test('a member with an incompatible schema version is refused a role, with the reason; version N+1 is not', async (t) => {
  const victim = alternateOf(await net.settledRoles());
  const others = net.ids().filter((id) => id !== victim);
  await net.restart(victim, { env: { BLOCKGATE_ANNOUNCE_VERSIONS: JSON.stringify({ protocol: [1, 1], schema: [2, 2] }) } });
  const refused = await eventually(async () => {
    const x = await net.status(victim);
    return x.refused !== undefined && x.boot !== 'booting' ? x : undefined;
  }, 60_000, `${victim} refused`);
  t.match(refused.refused, /schema 2.*schema 1/, `${victim} says why: ${String(refused.refused)}`);
  t.equal(refused.eligible, false, 'not eligible');
  t.equal(await roleOf(victim), 'none', 'it holds no role');
  for (const other of others) {
    const peer = await eventually(async () => {
      const p = ((await net.status(other)).peers as Array<{ id: string; compatible: boolean; refused?: string }>).find((x) => x.id === victim);
      return p && !p.compatible ? p : undefined;
    }, 30_000, `${other} marks ${victim} incompatible`);
    t.match(peer.refused, /schema/, `${other} sees the reason too: ${String(peer.refused)}`);
  }
  t.ok(
    others.some((other) => net.cluster.members.get(other)!.process.lines.some((l) => l.alarm === 'incompatible' && l.peer === victim)),
    'an incompatibility alarm was raised',
  );
  const roles = await net.settledRoles(SET, others);
  t.notOk(Object.keys(roles).includes(victim), 'the set runs on the two compatible members');
  t.equal(await roleOf(victim), 'none', `${victim} still holds no role once the others settled`);
  // N+1: speaks protocols 1-2 and reads schemas 1-2 (a rolling upgrade). It stays so for the next tests.
  await net.restart(victim, { env: { BLOCKGATE_ANNOUNCE_VERSIONS: JSON.stringify({ protocol: [1, 2], schema: [1, 2] }) } });
  const after = await net.settledRoles();
  t.ok(['secondary', 'alternate'].includes(after[victim]!), `N+1 takes a role: ${after[victim]}`);
  const ok = await net.status(victim);
  t.equal(ok.eligible, true, 'N+1 is eligible');
  t.equal(ok.refused, undefined, 'N+1 is not refused');
});

t.test('a crash-looping member is quarantined at its failure limit until an operator clears it', async (t) => {
  const victim = alternateOf(await net.settledRoles());
  const other = net.ids().find((id) => id !== victim)!;
  // The first crash is within the limit: it takes a role again.
  await net.restart(victim, { kill: true });
  const first = await net.settledRoles();
  t.ok(['secondary', 'alternate'].includes(first[victim]!), `after ${FAILURE_LIMIT.failures} crash, ${victim} takes a role again (${first[victim]})`);
  t.notOk((await net.status(victim)).quarantine, 'not quarantined at the limit');
  // One more within the window: past the limit.
  await net.restart(victim, { kill: true });
  const s = await eventually(async () => {
    const x = await net.status(victim);
    return x.quarantine ? x : undefined;
  }, 60_000, `${victim} quarantined`);
  t.match(s.quarantine.reason, /2 failures .*crash/, `reason: ${String(s.quarantine.reason)}`);
  t.match(s.refused, /quarantined.*clear-quarantine/, `refused, saying how to clear it: ${String(s.refused)}`);
  // The other two settle without it, and it never campaigns.
  await net.settledRoles(SET, net.ids().filter((id) => id !== victim));
  const held = await net.setOf(victim);
  t.equal(held.role, 'none', 'no role while quarantined');
  t.equal(held.campaigning, false, 'it does not campaign');
  await eventually(
    async () => ((await net.status(other)).peers as Array<{ id: string; quarantined?: boolean }>).find((p) => p.id === victim)?.quarantined || undefined,
    30_000,
    `${other} sees the quarantine`,
  );
  // A restart does not clear it: it is kept in the member's store.
  await net.restart(victim);
  await eventually(async () => ((await net.status(victim)).quarantine ? true : undefined), 60_000, `${victim} still quarantined after a restart`);
  t.equal(await roleOf(victim), 'none', 'still no role after the restart');
  // The operator clears it through another member (forwarded over a management network), with the CLI.
  const token = join(net.dataOf(other), 'api', 'admin.token');
  const { stdout } = await nsExec(net.nsOf(other), process.execPath, [CLI, 'cluster', 'clear-quarantine', victim, '--member', `http://127.0.0.1:${API_PORT}`, '--token-file', token], { timeoutMs: 120_000 });
  t.match(stdout, `${victim}: quarantine cleared`);
  const back = await net.settledRoles();
  t.ok(['secondary', 'alternate'].includes(back[victim]!), `${victim} is ${back[victim]} again`);
  t.notOk((await net.status(victim)).quarantine, 'the quarantine is gone');
  const printed = await nsExec(net.nsOf(other), process.execPath, [CLI, 'cluster', 'status', '--member', `http://127.0.0.1:${API_PORT}`, '--token-file', token], { timeoutMs: 120_000 });
  t.match(printed.stdout, new RegExp(`${victim}: alive`), `cluster status lists ${victim}:\n${printed.stdout}`);
});

t.test('restart of one member: it catches up with a change made while it was down before it takes a role', async (t) => {
  const roles = await net.settledRoles();
  const primary = primaryOf(roles);
  const victim = alternateOf(roles);
  await net.cluster.kill(victim, 'SIGTERM');
  const { current } = (await net.api(primary, 'GET', '/api/v1/config')).body as { current: { config: Record<string, any> } };
  const change = await net.api(primary, 'PUT', '/api/v1/config', { ...current.config, exports: [{ ...current.config.exports[0], description: 'made while one was down' }] });
  t.equal(change.status, 200, `a change while ${victim} is down: generation ${String(change.body.generation)}`);
  const m = net.cluster.start(victim);
  await m.process.ready();
  const after = await net.settledRoles();
  t.ok(['secondary', 'alternate'].includes(after[victim]!), `${victim} rejoined as ${after[victim]}`);
  t.equal(primaryOf(after), primary, 'the Primary did not change');
  t.equal((await net.status(victim)).boot, 'restart', `${victim} knew it was the restart of one member`);
  const kept = m.process.lines.findIndex((l) => l.msg === 'configuration generation kept' && l.generation === change.body.generation);
  const role = m.process.lines.findIndex((l) => l.msg === 'role in set' && l.set === SET && l.role !== 'none');
  t.ok(kept >= 0, `${victim} kept generation ${String(change.body.generation)}`);
  t.ok(role > kept, `${victim} held it before it took a role (lines ${kept} < ${role})`);
  const mine = (await net.api(victim, 'GET', '/api/v1/config')).body as { generation: number; current: { checksum: string } };
  t.same([mine.generation, mine.current.checksum], [change.body.generation, change.body.checksum], 'same generation and checksum as the Primary');
});
