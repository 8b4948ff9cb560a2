/**
 * The management API client of the member commands: where it connects (--member, then
 * $BLOCKGATE_MEMBER, HTTP or a Unix socket) and which bearer token it sends (--token,
 * --token-file, $BLOCKGATE_TOKEN, $BLOCKGATE_TOKEN_FILE, in that order).
 */
import t from 'tap';
import { createServer, type IncomingMessage } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient, ApiError, MemberUnreachableError, parseMemberAddress } from '../../gateway/cli/api-client.js';
import { apiClientFrom, memberAddressesFrom, memberPoolFrom } from '../../gateway/cli/member-options.js';
import { ProgressMeter } from '../../gateway/image/progress-meter.js';

const dir = mkdtempSync(join(tmpdir(), 'blockgate-api-client-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in API that records each request and answers from `reply`. */
async function server(listenOn: number | string) {
  const seen: IncomingMessage[] = [];
  let reply: { status: number; body: string } = { status: 200, body: '{"jobs":[]}' };
  const s = createServer((req, res) => {
    seen.push(req);
    req.resume();
    req.on('end', () => res.writeHead(reply.status, { 'content-type': 'application/json' }).end(reply.body));
  });
  await new Promise<void>((resolve) => (typeof listenOn === 'string' ? s.listen(listenOn, resolve) : s.listen(listenOn, '127.0.0.1', resolve)));
  t.teardown(() => new Promise((resolve) => s.close(resolve)));
  const address = s.address();
  return {
    seen,
    url: typeof address === 'string' ? `unix:${address}` : `http://127.0.0.1:${address!.port}`,
    answer(status: number, body: string) {
      reply = { status, body };
    },
  };
}

t.test('the token comes from the first of --token, --token-file, $BLOCKGATE_TOKEN, $BLOCKGATE_TOKEN_FILE', async (t) => {
  const api = await server(0);
  const file = join(dir, 'token');
  writeFileSync(file, 'from-file\n');
  const envFile = join(dir, 'env-token');
  writeFileSync(envFile, 'from-env-file\n');
  // A member on this host: its data directory's token when none is given.
  const dataDir = join(dir, 'data');
  mkdirSync(join(dataDir, 'api'), { recursive: true });
  writeFileSync(join(dataDir, 'api', 'admin.token'), 'from-data-dir\n');
  const cases: Array<[Parameters<typeof apiClientFrom>[0], NodeJS.ProcessEnv, string | undefined]> = [
    [{ member: [api.url], token: 'opt', 'token-file': file }, { BLOCKGATE_TOKEN: 'env' }, 'Bearer opt'],
    [{ member: [api.url], 'token-file': file }, { BLOCKGATE_TOKEN: 'env' }, 'Bearer from-file'],
    [{ member: [api.url] }, { BLOCKGATE_TOKEN: 'env', BLOCKGATE_TOKEN_FILE: envFile }, 'Bearer env'],
    [{ member: [api.url] }, { BLOCKGATE_TOKEN_FILE: envFile }, 'Bearer from-env-file'],
    [{}, { BLOCKGATE_MEMBER: api.url, BLOCKGATE_DATA_DIR: dataDir }, 'Bearer from-data-dir'],
  ];
  for (const [values, env, expected] of cases) {
    await apiClientFrom(values, env).get('/api/v1/jobs');
    t.equal(api.seen.pop()!.headers.authorization, expected, JSON.stringify({ values, env }));
  }
  t.throws(() => apiClientFrom({ 'token-file': join(dir, 'missing') }, {}), /--token-file .*missing: ENOENT/);
  writeFileSync(join(dir, 'empty'), '\n');
  t.throws(() => apiClientFrom({ 'token-file': join(dir, 'empty') }, {}), /the token is empty/);
  t.throws(() => apiClientFrom({ member: ['ftp://x'] }, {}), /only http and https/);
});

t.test('the members: --member (repeated or a list) and --members-file, else $BLOCKGATE_MEMBER and $BLOCKGATE_MEMBERS_FILE', async (t) => {
  const file = join(dir, 'members');
  writeFileSync(file, '# cluster c1\nh1:9810, h2:9810\n\nunix:/run/m3.sock # on this host\n');
  t.same(memberAddressesFrom({ member: ['a:1,b:1', 'c:1'] }, { BLOCKGATE_MEMBER: 'x:1' }), ['a:1', 'b:1', 'c:1'], 'options win over the environment');
  t.same(memberAddressesFrom({ member: ['a:1'], 'members-file': file }, {}), ['a:1', 'h1:9810', 'h2:9810', 'unix:/run/m3.sock']);
  t.same(memberAddressesFrom({}, { BLOCKGATE_MEMBER: 'x:1 y:1,x:1', BLOCKGATE_MEMBERS_FILE: file }), ['x:1', 'y:1', 'h1:9810', 'h2:9810', 'unix:/run/m3.sock'], 'each member once');
  t.same(memberAddressesFrom({}, {}), ['http://127.0.0.1:9810']);
  writeFileSync(join(dir, 'no-members'), '# none yet\n');
  t.throws(() => memberAddressesFrom({ 'members-file': join(dir, 'no-members') }, {}), /--members-file .*no-members: names no member/);
  t.throws(() => memberAddressesFrom({}, { BLOCKGATE_MEMBERS_FILE: join(dir, 'missing') }), /BLOCKGATE_MEMBERS_FILE .*missing: ENOENT/);
  for (const bad of ['0', '-1', 'soon', '7200']) t.throws(() => memberPoolFrom({ timeout: bad }, {}), /--timeout .*: a number of seconds/);
});

t.test('members on HTTP, with a path prefix, and on a Unix socket; errors say what happened', async (t) => {
  const tcp = await server(0);
  const unix = await server(join(dir, 'api.sock'));
  t.same(parseMemberAddress('127.0.0.1:9810'), { url: new URL('http://127.0.0.1:9810') });
  t.same(parseMemberAddress('/run/blockgate/api.sock'), { socketPath: '/run/blockgate/api.sock' });

  const viaSocket = new ApiClient({ member: parseMemberAddress(unix.url) });
  t.same((await viaSocket.get('/api/v1/jobs')).body, { jobs: [] });
  t.equal(unix.seen[0]!.url, '/api/v1/jobs');

  const prefixed = new ApiClient({ member: parseMemberAddress(`${tcp.url}/blockgate/`) });
  await prefixed.post('/api/v1/jobs', { kind: 'image-import' });
  const req = tcp.seen.pop()!;
  t.equal(req.url, '/blockgate/api/v1/jobs');
  t.equal(req.headers['content-type'], 'application/json', 'state-changing requests are JSON');

  tcp.answer(409, '{"error":"export \\"x\\" is busy"}');
  const refused = await prefixed.get('/api/v1/jobs').catch((e: unknown) => e);
  t.ok(refused instanceof ApiError);
  t.match(refused, { status: 409, message: 'export "x" is busy' });
  tcp.answer(200, '<html>');
  t.rejects(prefixed.get('/'), MemberUnreachableError, 'an answer that is not JSON is not a blockgate API');
  const down = await new ApiClient({ member: parseMemberAddress('http://127.0.0.1:1') }).get('/').catch((e: unknown) => e);
  t.ok(down instanceof MemberUnreachableError);
  t.match(down, { message: 'cannot reach the member at http://127.0.0.1:1: ECONNREFUSED' });
});

t.test('the progress meter: a sliding-window rate, the ETA at that rate, never backwards', async (t) => {
  let now = 0;
  const m = new ProgressMeter(1000, () => now);
  t.same(m.snapshot(), { bytesDone: 0, bytesTotal: 1000, bytesPerSecond: 0, etaSeconds: null }, 'no rate before any progress');
  now = 1000;
  m.update(100);
  t.same(m.snapshot(), { bytesDone: 100, bytesTotal: 1000, bytesPerSecond: 100, etaSeconds: 9 });
  // 10 bytes/s for ten seconds, then 50 bytes/s for ten more: the rate is the recent one.
  const slow = new ProgressMeter(10_000, () => now);
  for (now = 1000; now <= 10_000; now += 1000) slow.update(now / 100);
  for (; now <= 20_000; now += 1000) slow.update(100 + ((now - 10_000) / 1000) * 50);
  t.same(slow.snapshot(), { bytesDone: 600, bytesTotal: 10_000, bytesPerSecond: 50, etaSeconds: 188 }, 'the rate of the last ten seconds, not the average since the start');
  m.update(400);
  m.update(300);
  t.equal(m.snapshot().bytesDone, 400, 'progress never goes backwards');
  m.update(5000);
  t.match(m.snapshot(), { bytesDone: 1000, etaSeconds: 0 }, 'capped at the total');
});
