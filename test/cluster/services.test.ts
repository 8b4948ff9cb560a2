import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ensureBuilt, type LogLine } from '../helpers/blockgate-cli.js';
import { eventually } from '../helpers/cluster-net.js';
import { alternateOf, NetCluster, primaryOf, SET } from '../helpers/net-cluster.js';
import { nsExec } from '../helpers/netns.js';

/**
 * The cluster services between three member hosts in network namespaces, with management
 * networks A (UDP heartbeats over IPv4, DNS-SD over mDNS) and B (TCP heartbeats over IPv6, a
 * seed list): Discovery, the Policy Manager (health monitoring, link vs member faults,
 * compatibility, failure limit), the Boot Service and the configuration database kept
 * identical on every member. The arbiter is the file lock (the namespaces share one file
 * system), so no etcd runs here; multi-host.test.ts covers etcd. One topology and one set of
 * members for the whole file: each test leaves the cluster running for the next.
 */

ensureBuilt();
// Room for a loaded machine (member starts slow down most); the file takes 1-2 minutes on a quiet one.
t.setTimeout(600_000);
let net: NetCluster;
let cluster: NetCluster['cluster'];
let topo: NetCluster['topo'];

t.before(async () => {
  net = await NetCluster.create(t, 'bgcs', 'clu-services-');
  ({ cluster, topo } = net);
});

const ids = (): string[] => net.ids();
const nsOf = (id: string): string => net.nsOf(id);
const dataOf = (id: string): string => net.dataOf(id);
const api = (id: string, method: string, path: string, body?: unknown) => net.api(id, method, path, body);
const clusterStatus = (id: string) => net.status(id);
const settledRoles = (set?: string, members?: string[]) => net.settledRoles(set, members);

t.test('cold start in random order: every member found on both networks, one Primary, a Secondary named, the file becomes generation 1 everywhere', async (t) => {
  const order = [...ids()].sort(() => Math.random() - 0.5);
  t.comment(`start order: ${order.join(', ')}`);
  for (const id of order) {
    cluster.start(id);
    // Staggered, as hosts come up: each start meets a different set of members already up.
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 800)));
  }
  for (const id of order) await cluster.members.get(id)!.process.ready();
  const roles = await settledRoles();
  t.comment(`roles: ${JSON.stringify(roles)}`);
  for (const id of ids()) {
    // Heartbeats on both networks are confirmed peer by peer as they arrive: polled, with room for a loaded machine.
    const s = await eventually(
      async () => {
        const x = await clusterStatus(id);
        const peers = x.peers as Array<{ id: string; networks: Record<string, { state: string }> }>;
        return peers.length === 2 && peers.every((p) => p.networks.a?.state === 'up' && p.networks.b?.state === 'up') ? x : undefined;
      },
      60_000,
      `${id} hears both others on A and B`,
    ).catch(async (err: unknown) => {
      t.comment(`${id}: ${JSON.stringify((await clusterStatus(id)).peers)}`);
      throw err;
    });
    t.equal(s.boot, 'cold', `${id} knew it was a cold start`);
    const peers = s.peers as Array<{ id: string; networks: Record<string, { state: string }> }>;
    t.same(peers.map((p) => p.id).sort(), ids().filter((x) => x !== id).sort(), `${id} sees the two others`);
    for (const p of peers) t.same([p.networks.a!.state, p.networks.b!.state], ['up', 'up'], `${id} hears ${p.id} on A (UDP, IPv4) and B (TCP, IPv6)`);
    const lines = cluster.members.get(id)!.process.lines;
    t.ok(lines.some((l) => l.msg === 'member found by mDNS' && l.network === 'a'), `${id} found members by DNS-SD on network A`);
  }
  const primary = primaryOf(roles);
  const named = ((await clusterStatus(primary)).sets as Array<{ name: string; secondary?: string }>).find((x) => x.name === SET)!.secondary;
  t.equal(roles[named!], 'secondary', `the Primary (${primary}) named ${named} Secondary, and ${named} says so`);
  const configs = await eventually(
    async () => {
      const all = await Promise.all(ids().map(async (id) => (await api(id, 'GET', '/api/v1/config')).body));
      return all.every((c) => c.generation === 1) ? all : undefined;
    },
    60_000,
    'generation 1 on every member',
  );
  t.equal(new Set(configs.map((c) => c.current.checksum)).size, 1, 'one checksum everywhere');
});

t.test('cut network A only: an alarm naming network A within 2 s, and no role changes', async (t) => {
  const before = await settledRoles();
  const primary = primaryOf(before);
  const victim = ids().find((id) => id !== primary)!;
  const marks = new Map([...cluster.members.values()].map((m) => [m.id, m.process.lines.length]));
  const since = (id: string): LogLine[] => cluster.members.get(id)!.process.lines.slice(marks.get(id));
  const cutAt = Date.now();
  await topo.cut(victim, 'a');
  t.teardown(() => topo.heal(victim, 'a'));
  const seen = await net.whenLogs(
    () => {
      for (const id of ids()) {
        const l = since(id).find((x) => typeof x.msg === 'string' && x.msg.startsWith('alarm:') && x.alarm === 'link-down' && x.network === 'a');
        if (l) return { by: id, line: l };
      }
      return undefined;
    },
    30_000,
    'a link alarm naming network A',
  );
  // Timed by the member's own log clock (pino's time), from before the cut was made: what a loaded test runner adds is not counted.
  const ms = Number(seen.line.time) - cutAt;
  t.ok(ms <= 2000, `${seen.by} raised "${String(seen.line.msg)}" ${ms} ms after the cut`);
  await eventually(
    async () => ((await clusterStatus(primary)).alarms as Array<{ kind: string; network?: string }>).some((a) => a.kind === 'link-down' && a.network === 'a') || undefined,
    30_000,
    'the alarm in /api/v1/cluster',
  );
  t.ok(((await api(primary, 'GET', '/api/v1/status')).body as { cluster?: unknown }).cluster, '/api/v1/status carries the cluster view');
  // The link stays cut a while longer: a member failure would have been decided by now (silence, then the self-test over B).
  await new Promise((r) => setTimeout(r, 2000));
  await topo.heal(victim, 'a');
  await eventually(async () => ((await clusterStatus(primary)).alarms as unknown[]).length === 0 || undefined, 60_000, 'the alarm cleared after healing');
  for (const id of ids()) {
    const bad = since(id).filter((l) => l.msg === 'stopped serving' || l.msg === 'role in set' || (l.alarm === 'member-failed' && typeof l.msg === 'string' && l.msg.startsWith('alarm:')));
    t.same(bad, [], `${id}: no role change, no member failure, nobody stopped serving while A was cut`);
  }
  t.same(await settledRoles(), before, 'roles unchanged');
});

t.test('kill -9 of a member: the others report a member failure (its host still answers ICMP echo), not a link fault', async (t) => {
  const before = await settledRoles();
  const primary = primaryOf(before);
  const victim = alternateOf(before);
  const others = ids().filter((id) => id !== victim);
  const marks = new Map([...cluster.members.values()].map((m) => [m.id, m.process.lines.length]));
  await cluster.kill(victim, 'SIGKILL');
  const since = (id: string): LogLine[] => cluster.members.get(id)!.process.lines.slice(marks.get(id));
  for (const id of others) {
    const line = await net.whenLogs(
      () => since(id).find((l) => l.alarm === 'member-failed' && l.peer === victim && typeof l.msg === 'string' && l.msg.startsWith('alarm:')),
      30_000,
      `${id} reports ${victim} failed`,
    );
    t.match(line.msg, /host is up, the member is not/, `${id}: ${String(line.msg)}`);
    t.same(since(id).filter((l) => l.alarm === 'link-down' && l.peer === victim && typeof l.msg === 'string' && l.msg.startsWith('alarm:')), [], `${id} raised no link alarm about ${victim}`);
    const peer = ((await clusterStatus(id)).peers as Array<{ id: string; health: string }>).find((p) => p.id === victim);
    t.equal(peer?.health, 'failed', `${id}'s status shows ${victim} failed`);
  }
  t.equal(primaryOf(await settledRoles('disks', others)), primary, 'the Primary kept its role');
  await cluster.start(victim).process.ready();
  await settledRoles();
});

t.test('a configuration change sent to a non-Primary member is applied, with the same generation and checksum everywhere', async (t) => {
  const roles = await settledRoles();
  const alternate = alternateOf(roles);
  const marks = new Map([...cluster.members.values()].map((m) => [m.id, m.process.lines.length]));
  const { generation, current } = (await api(alternate, 'GET', '/api/v1/config')).body as { generation: number; current: { config: Record<string, any> } };
  const doc = { ...current.config, exports: [{ ...current.config.exports[0], description: 'generation two' }] };
  const reply = await api(alternate, 'PUT', '/api/v1/config', doc);
  t.equal(reply.status, 200, `PUT /api/v1/config on ${alternate}: ${JSON.stringify(reply.body)}`);
  t.equal(reply.body.generation, generation + 1, 'a new generation');
  t.not(reply.body.appliedBy, alternate, `made by the cluster set's Primary (${String(reply.body.appliedBy)}), not where it was sent`);
  let seen: unknown[] = [];
  await eventually(
    async () => {
      seen = await Promise.all(ids().map(async (id) => (await api(id, 'GET', '/api/v1/config').catch((err: unknown) => ({ body: { generation: String(err) } }))).body.generation));
      return seen.every((g) => g === reply.body.generation) || undefined;
    },
    30_000,
    'the new generation on every member',
  ).catch((err: unknown) => {
    for (const m of cluster.members.values()) {
      t.comment(`${m.id}: ${m.process.lines.filter((l) => /configuration|generation|reload|restart|exit|error/i.test(String(l.msg))).slice(-12).map((l) => `${String(l.msg)} ${JSON.stringify(l.err ?? l.generation ?? '')}`).join('\n    ')}`);
    }
    throw new Error(`${String(err)}: generations ${JSON.stringify(seen)}`);
  });
  const shown: string[] = [];
  for (const id of ids()) {
    const { stdout } = await nsExec(nsOf(id), process.execPath, [CLI, 'show-config', '--data-dir', dataOf(id)], { timeoutMs: 120_000 });
    shown.push(stdout.split('\n')[0]!);
    t.match(shown.at(-1), `generation ${reply.body.generation as number} `, `show-config on ${id}: ${shown.at(-1)}`);
  }
  const sums = shown.map((l) => /(sha256:[0-9a-f]+)/.exec(l)?.[1]);
  t.same(new Set(sums).size, 1, `one checksum on every member: ${sums[0]}`);
  t.equal(sums[0], reply.body.checksum);
  // Applied live on every member: nobody restarted, so the roles stayed where they were.
  for (const id of ids()) {
    const lines = cluster.members.get(id)!.process.lines.slice(marks.get(id));
    t.ok(lines.some((l) => l.msg === 'new configuration generation applied live' && l.generation === reply.body.generation), `${id} applied it live`);
  }
  t.same(await settledRoles(), roles, 'no role moved');
  // The set's Primary serves the export with its new description.
  const primary = primaryOf(roles);
  const listing = await eventually(
    async () => {
      const { stdout } = await nsExec(nsOf(primary), 'nbdinfo', ['--list', '--json', 'nbd://127.0.0.1:10809']);
      return stdout.includes('generation two') ? stdout : undefined;
    },
    60_000,
    'the new description served',
  );
  t.match(listing, /generation two/, 'the Primary serves the changed export');
});


t.test('a replacement member (empty data directory) is checked, pulls the configuration and joins as an Alternate', async (t) => {
  const roles = await settledRoles();
  const primary = primaryOf(roles);
  const victim = alternateOf(roles);
  const running = (await api(primary, 'GET', '/api/v1/config')).body as { generation: number; current: { checksum: string } };
  const m = await net.restart(victim, { wipe: true });
  const after = await settledRoles();
  t.equal(after[victim], 'alternate', `${victim} joined as an Alternate`);
  t.equal(primaryOf(after), primary, 'the Primary did not change');
  const s = await clusterStatus(victim);
  t.equal(s.boot, 'replacement', `${victim} knew it replaced a member (its store was empty)`);
  t.same([s.eligible, s.refused], [true, undefined], 'its versions were checked and accepted');
  const kept = m.process.lines.findIndex((l) => l.msg === 'configuration generation kept' && l.generation === running.generation);
  const role = m.process.lines.findIndex((l) => l.msg === 'role in set' && l.set === SET && l.role !== 'none');
  t.ok(kept >= 0 && role > kept, `${victim} pulled generation ${running.generation} before it took a role (lines ${kept} < ${role})`);
  const mine = (await api(victim, 'GET', '/api/v1/config')).body as { generation: number; current: { checksum: string } };
  t.same([mine.generation, mine.current.checksum], [running.generation, running.current.checksum], 'the cluster\'s generation and checksum, not its file');
  // The others know it as the member it replaced (its incarnation starts again at 1): alive, heard on both networks.
  for (const id of ids().filter((x) => x !== victim)) {
    const peer = await eventually(
      async () => {
        const p = ((await clusterStatus(id)).peers as Array<{ id: string; health: string; incarnation?: number; networks: Record<string, { state: string }> }>).find((x) => x.id === victim);
        return p?.health === 'alive' && p.incarnation === s.incarnation && p.networks.a?.state === 'up' && p.networks.b?.state === 'up' ? p : undefined;
      },
      60_000,
      `${id} hears the replacement ${victim}`,
    );
    t.equal(peer.incarnation, s.incarnation, `${id} hears ${victim} alive on A and B, incarnation ${String(peer.incarnation)}`);
  }
});

t.test('cold start of the whole set: the member with the newest configuration campaigns first, the others wait for it', async (t) => {
  // The first member in preference order misses a change: it would win on preference alone.
  const stale = ids()[0]!;
  const others = ids().filter((id) => id !== stale);
  const t0 = Date.now();
  const step = (what: string): void => t.comment(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
  await settledRoles();
  await cluster.kill(stale, 'SIGTERM');
  await settledRoles(SET, others);
  const { current } = (await api(others[0]!, 'GET', '/api/v1/config')).body as { current: { config: Record<string, any> } };
  const change = await api(others[0]!, 'PUT', '/api/v1/config', { ...current.config, exports: [{ ...current.config.exports[0], description: `made while ${stale} was down` }] });
  t.equal(change.status, 200, `a change while ${stale} is down: generation ${String(change.body.generation)}`);
  await eventually(
    async () => ((await Promise.all(others.map(async (id) => (await api(id, 'GET', '/api/v1/config')).body.generation))).every((g) => g === change.body.generation) ? true : undefined),
    60_000,
    `generation ${String(change.body.generation)} on ${others.join(', ')}`,
  );
  step('change made');
  await Promise.all(others.map((id) => cluster.kill(id, 'SIGTERM')));
  step('all stopped');
  // The stale member comes up first and waits for a quorum; then the others.
  const first = cluster.start(stale);
  await first.process.waitFor((l) => l.msg === 'cold start: waiting for a quorum of members');
  step(`${stale} waits for a quorum`);
  for (const id of others) cluster.start(id);
  for (const id of ids()) await cluster.members.get(id)!.process.ready();
  step('all ready');
  const roles = await settledRoles();
  step('roles settled');
  t.comment(`roles: ${JSON.stringify(roles)}`);
  for (const id of ids()) t.equal((await clusterStatus(id)).boot, 'cold', `${id} knew it was a cold start`);
  // It met members with a newer configuration: it campaigned (Secondary without a Primary) or
  // served only once it held that configuration; a member going by preference alone would have
  // campaigned at once, with the older one.
  const lines = first.process.lines;
  const kept = lines.findIndex((l) => l.msg === 'configuration generation kept' && l.generation === change.body.generation);
  t.ok(kept >= 0, `${stale} kept generation ${String(change.body.generation)}`);
  const early = lines.slice(0, Math.max(0, kept)).filter((l) => l.msg === 'role in set' && l.set === SET && (l.role === 'secondary' || l.role === 'primary'));
  t.same(early, [], `${stale} did not campaign before it held the newest configuration`);
  const primary = primaryOf(roles);
  const held = cluster.members.get(primary)!.process.lines;
  const elected = held.findIndex((l) => l.msg === 'role in set' && l.set === SET && l.role === 'primary');
  const newest = held.findIndex((l) => (l.msg === 'configuration generation kept' && l.generation === change.body.generation) || (l.msg === 'running stored configuration' && l.generation === change.body.generation));
  t.ok(newest >= 0 && elected > newest, `the Primary (${primary}) held generation ${String(change.body.generation)} when it was elected`);
  const mine = (await api(stale, 'GET', '/api/v1/config')).body as { generation: number; current: { checksum: string } };
  t.same([mine.generation, mine.current.checksum], [change.body.generation, change.body.checksum], `${stale} caught up`);
});

t.test('a replacement member with a new id: the operator swaps it in for a lost member by a configuration change; the lost one is forgotten, the new one is checked, pulls the configuration and joins as an Alternate', async (t) => {
  const roles = await settledRoles();
  const lost = alternateOf(roles);
  const stay = ids().filter((id) => id !== lost);
  const added = 'm4';
  await cluster.kill(lost); // its host is replaced: the member never comes back
  const { current } = (await api(stay[0]!, 'GET', '/api/v1/config')).body as { current: { config: Record<string, any> } };
  const c = current.config;
  const swap = (members: string[]): string[] => members.map((id) => (id === lost ? added : id));
  const config = {
    ...c,
    cluster: {
      ...c.cluster,
      members: (c.cluster.members as Array<{ id: string }>).map((m) => (m.id === lost ? { ...m, id: added } : m)),
      sets: (c.cluster.sets as Array<{ members: string[] }>).map((s) => ({ ...s, members: swap(s.members) })),
    },
  };
  const change = await api(stay[1]!, 'PUT', '/api/v1/config', config);
  t.equal(change.status, 200, `the swap is a configuration change like any other: ${JSON.stringify(change.body)}`);
  // The members restart with the new cluster section: the lost member is no longer one of theirs.
  for (const id of stay) {
    await eventually(
      async () => {
        const s = await clusterStatus(id);
        return s.boot !== 'booting' && !(s.peers as Array<{ id: string }>).some((p) => p.id === lost) && (s.peers as Array<{ id: string }>).some((p) => p.id === stay.find((x) => x !== id)) ? s : undefined;
      },
      60_000,
      `${id} runs the new membership`,
    );
  }
  const file = join(net.dir, 'swapped.json');
  writeFileSync(file, JSON.stringify(config));
  const m = await net.startOnHostOf(lost, added, file);
  const after = await settledRoles(SET, [...stay, added]);
  t.equal(after[added], 'alternate', `${added} joined as an Alternate`);
  const s = await clusterStatus(added);
  t.equal(s.boot, 'replacement', `${added} booted as a replacement (a new member's empty store)`);
  t.same([s.eligible, s.refused], [true, undefined], 'its versions were checked and accepted');
  const kept = m.process.lines.findIndex((l) => l.msg === 'configuration generation kept' && l.generation === change.body.generation);
  const role = m.process.lines.findIndex((l) => l.msg === 'role in set' && l.set === SET && l.role !== 'none');
  t.ok(kept >= 0 && role > kept, `${added} pulled the cluster's generation ${String(change.body.generation)} before it took a role (lines ${kept} < ${role})`);
  const mine = (await api(added, 'GET', '/api/v1/config')).body as { generation: number; current: { checksum: string } };
  t.same([mine.generation, mine.current.checksum], [change.body.generation, change.body.checksum], "it runs the cluster's generation and checksum");
  for (const id of stay) {
    const st = await eventually(
      async () => {
        const x = await clusterStatus(id);
        const peer = (x.peers as Array<{ id: string; health: string }>).find((p) => p.id === added);
        return peer?.health === 'alive' ? x : undefined;
      },
      60_000,
      `${id} hears ${added}`,
    );
    t.notOk((st.peers as Array<{ id: string }>).some((p) => p.id === lost), `${id} no longer knows ${lost}`);
    t.same((st.alarms as Array<{ peer?: string }>).filter((a) => a.peer === lost), [], `${id} has no active alarm about ${lost}`);
  }
});
