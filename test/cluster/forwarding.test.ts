import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ensureBuilt } from '../helpers/blockgate-cli.js';
import { API_PORT, eventually } from '../helpers/cluster-net.js';
import { alternateOf, NetCluster, primaryOf } from '../helpers/net-cluster.js';
import { nsExec } from '../helpers/netns.js';

/**
 * Management requests load-balanced across a cluster's members: every member's API answers
 * reads itself, and a change sent to a member that is not the Primary is forwarded to the
 * Primary over the management network (sealed with the cluster key, with a hop header: no
 * loops), its answer returned; during a failover it waits for the new Primary. etcd holds
 * the configuration generations (written by the Primary in a transaction checked against its
 * fencing token); a member that missed one catches up before it takes a role. Three member
 * hosts in namespaces (NetCluster) with a three-node etcd, their APIs on every address so
 * peers can reach them.
 */

ensureBuilt();
const NAME = 'bgfw';
const HISTORY = 3;
let net: NetCluster;

t.before(async () => {
  // A short history, so the tests' few changes already compact the oldest generations.
  net = await NetCluster.create(t, NAME, 'clu-forward-', { apiHost: '0.0.0.0', etcd: true, clusterExtra: { configHistory: HISTORY } });
  await net.startAll();
});

/** A request from inside `id`'s namespace with its own admin token: status, headers and JSON body. */
async function request(id: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const token = readFileSync(join(net.dataOf(id), 'api', 'admin.token'), 'utf8').trim();
  const args = ['-s', '-i', '--max-time', '60', '-X', method, '-H', `Authorization: Bearer ${token}`, '-H', 'Content-Type: application/json'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  if (body !== undefined) args.push('--data-binary', JSON.stringify(body));
  args.push(`http://127.0.0.1:${API_PORT}${path}`);
  const { stdout } = await nsExec(net.nsOf(id), 'curl', args, { timeoutMs: 90_000 });
  const split = stdout.indexOf('\r\n\r\n');
  const head = stdout.slice(0, split).split('\r\n');
  const status = Number(head[0]!.split(' ')[1]);
  const h: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    h[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status, headers: h, body: JSON.parse(stdout.slice(split + 4) || '{}') as Record<string, any> };
}

/** Every member's `show-config` first line: the generation and checksum it holds. */
async function shownEverywhere(generation: number): Promise<string[]> {
  return eventually(
    async () => {
      const lines: string[] = [];
      for (const id of net.ids()) {
        const { stdout } = await nsExec(net.nsOf(id), process.execPath, [CLI, 'show-config', '--data-dir', net.dataOf(id)], { timeoutMs: 120_000 });
        lines.push(stdout.split('\n')[0]!);
      }
      return lines.every((l) => l.includes(`generation ${generation} `)) ? lines : undefined;
    },
    60_000,
    `generation ${generation} on every member`,
  );
}

/** The generation record etcd holds for the cluster (asked from inside a member host). */
async function inEtcd(id: string): Promise<{ generation: number; checksum: string }> {
  const key = Buffer.from(`blockgate/${NAME}/config/current`).toString('base64');
  const { stdout } = await nsExec(net.nsOf(id), 'curl', ['-s', '--max-time', '10', '-X', 'POST', '-d', JSON.stringify({ key }), `${net.etcd!.endpoints[0]!}/v3/kv/range`]);
  const kv = (JSON.parse(stdout) as { kvs?: Array<{ value: string }> }).kvs?.[0];
  if (!kv) throw new Error(`etcd holds no configuration: ${stdout}`);
  return JSON.parse(Buffer.from(kv.value, 'base64').toString('utf8')) as { generation: number; checksum: string };
}

interface Kept {
  generation: number;
  checksum: string;
  writtenBy: string;
  writtenAt: string;
  source: string;
}

/** The generations etcd holds under config/generations/, oldest first. */
async function etcdHistory(id: string): Promise<Kept[]> {
  const prefix = `blockgate/${NAME}/config/generations/`;
  const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  const body = { key: Buffer.from(prefix).toString('base64'), range_end: Buffer.from(end).toString('base64') };
  const { stdout } = await nsExec(net.nsOf(id), 'curl', ['-s', '--max-time', '10', '-X', 'POST', '-d', JSON.stringify(body), `${net.etcd!.endpoints[0]!}/v3/kv/range`]);
  const kvs = (JSON.parse(stdout) as { kvs?: Array<{ value: string }> }).kvs ?? [];
  return kvs.map((kv) => {
    const r = JSON.parse(Buffer.from(kv.value, 'base64').toString('utf8')) as Kept;
    return { generation: r.generation, checksum: r.checksum, writtenBy: r.writtenBy, writtenAt: r.writtenAt, source: r.source };
  });
}

/** `blockgate config …` run inside `id`'s namespace against its own API. */
async function cli(id: string, ...args: string[]): Promise<string> {
  const { stdout } = await nsExec(net.nsOf(id), process.execPath, [CLI, 'config', ...args, '--member', `http://127.0.0.1:${API_PORT}`, '--token-file', join(net.dataOf(id), 'api', 'admin.token')], { timeoutMs: 120_000 });
  return stdout;
}

/** The running configuration with the export's description changed. */
async function changed(id: string, description: string) {
  const { body } = await request(id, 'GET', '/api/v1/config');
  const config = body.current.config as Record<string, any>;
  return { generation: body.generation as number, config: { ...config, exports: [{ ...config.exports[0], description }] } };
}

t.test('a change sent to a non-Primary member (the CLI\'s config apply) is made by the Primary: one generation and checksum on every member', async (t) => {
  const roles = await net.settledRoles(NAME);
  const [primary, alternate] = [primaryOf(roles), alternateOf(roles)];
  const { generation, config } = await changed(alternate, 'changed through an alternate');
  const file = join(net.dir, 'change.json');
  writeFileSync(file, JSON.stringify(config));
  const { stdout } = await nsExec(net.nsOf(alternate), process.execPath, [CLI, 'config', 'apply', file, '--json', '--member', `http://127.0.0.1:${API_PORT}`, '--token-file', join(net.dataOf(alternate), 'api', 'admin.token')], { timeoutMs: 120_000 });
  const answer = JSON.parse(stdout) as { generation: number; applied: boolean };
  t.same([answer.applied, answer.generation], [true, generation + 1], 'applied as the next generation');
  const forwarded = net.cluster.members.get(alternate)!.process.lines.find((l) => l.msg === 'change forwarded to the Primary');
  t.match(forwarded, { primary, status: 200 }, `${alternate} forwarded it to ${primary}`);
  t.equal((await request(alternate, 'GET', '/api/v1/config')).body.generation, generation + 1, 'read back where it was sent: the new generation');
  const lines = await shownEverywhere(generation + 1);
  const sums = new Set(lines.map((l) => /sha256:[0-9a-f]+/.exec(l)?.[0]));
  t.equal(sums.size, 1, `one checksum on every member: ${lines.join(' | ')}`);
  t.match(await inEtcd(alternate), { generation: generation + 1, checksum: [...sums][0] }, 'etcd holds the generation, with the same checksum');
});

t.test('a member that missed a generation catches up (from its peers or etcd) before it takes a role', async (t) => {
  const roles = await net.settledRoles(NAME);
  const late = alternateOf(roles);
  const via = net.ids().find((id) => id !== late && roles[id] !== 'primary')!;
  await net.cluster.kill(late, 'SIGTERM');
  const { generation, config } = await changed(via, 'made while a member was down');
  const reply = await request(via, 'PUT', '/api/v1/config', config);
  t.equal(reply.status, 200, JSON.stringify(reply.body));
  t.match(await inEtcd(via), { generation: generation + 1, checksum: reply.body.checksum }, 'etcd holds the new generation');
  const back = net.cluster.start(late);
  await back.process.ready();
  await net.settledRoles(NAME);
  const lines = back.process.lines;
  const kept = lines.findIndex((l) => l.msg === 'configuration generation kept' && l.generation === generation + 1);
  const role = lines.findIndex((l) => l.msg === 'role in set' && l.role !== 'none');
  t.ok(kept >= 0, `${late} kept generation ${generation + 1}`);
  t.ok(role >= 0 && kept < role, `${late} held it before it took a role (${JSON.stringify(lines[role])})`);
  await shownEverywhere(generation + 1);
});

t.test('no loops: a forwarded change at a member that is not the Primary is refused with 503 and Retry-After, never forwarded again; a forged seal is refused', async (t) => {
  const roles = await net.settledRoles(NAME);
  const [primary, alternate] = [primaryOf(roles), alternateOf(roles)];
  const { config } = await changed(alternate, 'never made');
  const hop = await request(alternate, 'PUT', '/api/v1/config', config, { 'x-blockgate-forwarded-by': primary });
  t.equal(hop.status, 503);
  t.equal(hop.headers['retry-after'], '1');
  t.match(hop.body, { code: 'ENOTPRIMARY', primary, error: `${alternate} is not the Primary of set ${NAME}` });
  const self = await request(alternate, 'PUT', '/api/v1/config', config, { 'x-blockgate-forwarded-by': alternate });
  t.equal(self.status, 508, 'a change that came back to the member that forwarded it');
  // An action on a device of set disks goes to that set's Primary (here it is refused there: a file backend has no actions).
  const disksPrimary = primaryOf(await net.settledRoles());
  const other = net.ids().find((id) => id !== disksPrimary)!;
  const action = await request(other, 'POST', '/api/v1/devices/disk/actions/failback', {});
  t.equal(action.headers['x-blockgate-answered-by'], disksPrimary, `an action sent to ${other} was answered by the Primary of disks: ${JSON.stringify(action.body)}`);
  const forged = await request(primary, 'PUT', '/api/v1/config', config, { 'x-blockgate-forward-seal': 'by=x&role=admin&at=1&nonce=000000000000000000000000&mac=00' });
  t.match([forged.status, forged.body.error], [401, /forwarded request refused/]);
});

t.test('during a failover a change waits for the new Primary (or is refused with 503 and Retry-After), and is made once', async (t) => {
  const roles = await net.settledRoles(NAME);
  const [primary, alternate] = [primaryOf(roles), alternateOf(roles)];
  const { generation, config } = await changed(alternate, 'made during a failover');
  await net.cluster.kill(primary);
  const sent = Date.now();
  let reply = await request(alternate, 'PUT', '/api/v1/config', config);
  if (reply.status === 503) {
    // A loaded machine may take longer than the forwarder's wait to elect: then it waited the whole wait first.
    t.match(reply.body, { code: 'ENOPRIMARY' });
    t.ok(Date.now() - sent >= 9000, `the change waited for a Primary before the 503 (${Date.now() - sent} ms)`);
  }
  for (let i = 0; reply.status === 503 && i < 10; i++) {
    t.ok(Number(reply.headers['retry-after']) > 0, `503 with Retry-After: ${JSON.stringify(reply.body)}`);
    await new Promise((r) => setTimeout(r, Number(reply.headers['retry-after']) * 1000));
    reply = await request(alternate, 'PUT', '/api/v1/config', config);
  }
  t.equal(reply.status, 200, JSON.stringify(reply.body));
  t.not(reply.body.appliedBy, primary, `made by the new Primary (${String(reply.body.appliedBy)})`);
  t.equal(reply.body.generation, generation + 1);
  t.not(reply.headers['x-blockgate-answered-by'], primary);
});

t.test('etcd holds the last cluster.configHistory generations and every member mirrors them (a member that was down too); config history, show --generation and rollback (a new generation with old content) through a non-Primary', async (t) => {
  // The Primary killed by the previous test comes back: it mirrors the generations it missed.
  for (const id of net.ids()) {
    const m = net.cluster.members.get(id)!;
    if (m.killedAt.has(m.process)) await net.cluster.start(id).process.ready();
  }
  const roles = await net.settledRoles(NAME);
  const [primary, alternate] = [primaryOf(roles), alternateOf(roles)];
  const before = await etcdHistory(alternate);
  const newest = before.at(-1)!;
  t.equal(before.length, HISTORY, `etcd keeps ${HISTORY} generations: ${JSON.stringify(before.map((g) => g.generation))}`);
  t.same(
    before.map((g) => g.generation),
    Array.from({ length: HISTORY }, (_, i) => newest.generation - HISTORY + 1 + i),
    'the newest ones, in order (the oldest compacted)',
  );
  const listed = async (id: string): Promise<Kept[]> => (JSON.parse(await cli(id, 'history', '--json')) as { generations: Kept[] }).generations.reverse();
  for (const id of net.ids()) {
    const mine = await eventually(async () => {
      const l = await listed(id);
      return l.at(-1)?.generation === newest.generation && l.length === HISTORY ? l : undefined;
    }, 60_000, `${id} mirrors etcd's history`).catch(async () => listed(id));
    t.same(mine, before, `${id}'s kept generations are etcd's (number, checksum, author, time, source)`);
  }
  const text = await cli(alternate, 'history');
  t.match(text, new RegExp(`${newest.generation} \\(running\\)`), `config history marks the running generation:\n${text}`);

  // Roll back to the oldest kept generation, sent to an Alternate: the Primary makes it the next generation.
  const target = before[0]!;
  const shown = await cli(alternate, 'show', '--generation', String(target.generation));
  t.match(shown.split('\n')[0], new RegExp(`generation ${target.generation} .*${target.checksum}`), 'config show --generation N prints that generation');
  const answer = JSON.parse(await cli(alternate, 'rollback', String(target.generation), '--json')) as { generation: number; applied: boolean };
  t.same([answer.applied, answer.generation], [true, newest.generation + 1], 'the rollback is a new generation');
  const lines = await shownEverywhere(newest.generation + 1);
  t.ok(lines.every((l) => l.includes(target.checksum)), `every member runs generation ${target.generation}'s content again: ${lines.join(' | ')}`);
  const after = await etcdHistory(alternate);
  t.match(after.at(-1), { generation: newest.generation + 1, checksum: target.checksum, writtenBy: primary, source: `rollback:${target.generation}` }, 'etcd holds it, written by the Primary');
  t.same(
    after.map((g) => g.generation),
    [...before.slice(1).map((g) => g.generation), newest.generation + 1],
    `still ${HISTORY} in etcd: the oldest compacted in the same transaction`,
  );
  for (const id of net.ids()) {
    const mine = await eventually(async () => {
      const l = await listed(id);
      return l.at(-1)?.generation === newest.generation + 1 ? l : undefined;
    }, 60_000, `${id} keeps the rollback`);
    t.same(mine, after, `${id} mirrors it, with the same bound`);
  }
  await t.rejects(cli(alternate, 'show', String(target.generation)), /failed \(1\)/, `generation ${target.generation} is no longer kept: config show exits 1`);
});
