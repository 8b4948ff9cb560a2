/**
 * Clients given several members (the CLI's --member list, --members-file, and the MemberPool
 * of the API client library) against real member processes: reads go round the members,
 * a member killed or frozen is passed over, and when none answers the error names each one.
 */
import t from 'tap';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { memberPoolFrom } from '../../gateway/cli/member-options.js';
import { runCli, startMember, type MemberProcess } from '../helpers/blockgate-cli.js';
import { tempDir } from '../helpers/clients.js';

const TOKEN = 'pool-test-admin-token-0123456789abcdef';

const dir = await tempDir(t, 'blockgate-sets-pool-');
const members: Array<{ name: string; process: MemberProcess; api: string }> = [];
for (const name of ['pa', 'pb']) {
  const dataDir = join(dir, name);
  // One admin token on every member, as `token rotate` with every member makes it.
  await mkdir(join(dataDir, 'api'), { recursive: true, mode: 0o700 });
  await writeFile(join(dataDir, 'api', 'admin.token'), `${TOKEN}\n`, { mode: 0o600 });
  const config = join(dir, `${name}.yaml`);
  await writeFile(config, `member: ${name}\nbackends: [{name: d, type: memory, size: 1MiB}]\nexports: [{name: d, device: d}]\nnbd: {listen: ["127.0.0.1:0"]}\n`);
  const process = startMember(t, ['--config', config, '--data-dir', dataDir]);
  members.push({ name, process, api: '' });
}
for (const m of members) m.api = `http://${(await m.process.ready()).api![0]!}`;
const [a, b] = members as [(typeof members)[0], (typeof members)[0]];
const env = { BLOCKGATE_TOKEN: TOKEN };

/** Who answered `count` reads of one pool, by member name. */
async function answeredBy(pool: ReturnType<typeof memberPoolFrom>, count: number): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const { body } = await pool.get<{ member: string }>('/api/v1/whoami');
    seen[body.member] = (seen[body.member] ?? 0) + 1;
  }
  return seen;
}

t.test('reads go round every member; a frozen one is passed over after the time limit', async (t) => {
  t.same(await answeredBy(memberPoolFrom({ member: [a.api, b.api], token: TOKEN }, {}), 4), { pa: 2, pb: 2 });
  const file = join(dir, 'members');
  await writeFile(file, `# the cluster\n${a.api} ${b.api}  # both\n`);
  const r = await runCli(['status', '--json'], { env: { ...env, BLOCKGATE_MEMBERS_FILE: file } });
  t.equal(r.code, 0, r.stderr);
  t.ok([a.api, b.api].includes((JSON.parse(r.stdout) as { answeredBy: string }).answeredBy), 'a member of the file answered');

  // A stopped process keeps its listening socket: the kernel accepts, nobody answers.
  b.process.child.kill('SIGSTOP');
  t.teardown(() => b.process.child.kill('SIGCONT'));
  t.same(await answeredBy(memberPoolFrom({ member: [b.api, a.api], token: TOKEN, timeout: '1' }, {}), 2), { pa: 2 }, 'the next member answered');
  b.process.child.kill('SIGCONT');
});

t.test('a killed member is passed over', async (t) => {
  a.process.child.kill('SIGKILL');
  await a.process.exited;
  t.same(await answeredBy(memberPoolFrom({ member: [a.api, b.api], token: TOKEN }, {}), 4), { pb: 4 }, 'every read answered, by the live member');
  const r = await runCli(['status', '--member', `${a.api},${b.api}`, '--json'], { env });
  t.equal(r.code, 0, r.stderr);
});

t.test('no member answers: the error names each one and why', async (t) => {
  b.process.child.kill('SIGSTOP');
  const r = await runCli(['status', '--member', a.api, '--member', b.api, '--timeout', '1'], { env });
  b.process.child.kill('SIGCONT');
  t.equal(r.code, 3, 'exit 3: no member reachable');
  t.match(r.stderr, /no member answered \(2 asked\):/);
  t.match(r.stderr, `cannot reach the member at ${a.api}: ECONNREFUSED`);
  t.match(r.stderr, `${b.api} did not answer within 1000 ms`);
});
