import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { apiAt, memberApi, readToken, tokenFile } from '../helpers/api.js';
import { ensureBuilt, runCli, startMember } from '../helpers/blockgate-cli.js';

ensureBuilt();
const run = promisify(execFile);

/** A mirror and a multipath set: something to read and something an action changes. */
function memberConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    member: 'sec',
    backends: [
      { name: 'r0', type: 'memory', size: '1MiB' },
      { name: 'r1', type: 'memory', size: '1MiB' },
      { name: 'p0', type: 'memory', size: '1MiB' },
      { name: 'p1', type: 'memory', size: '1MiB' },
    ],
    devices: [
      { name: 'm0', type: 'mirror', replicas: ['r0', 'r1'] },
      { name: 'mp', type: 'multipath', paths: ['p0', 'p1'], policy: 'active-passive', failback: 'manual' },
    ],
    exports: [
      { name: 'vol', device: 'm0' },
      { name: 'mpvol', device: 'mp' },
    ],
    nbd: { listen: [] },
    iscsi: {
      targets: [
        {
          name: 'iqn.2026-11.dev.blockgate:sec',
          luns: [{ lun: 0, export: 'vol' }],
          chap: { user: 'initiator', secret: 'chap-secret-value-1' },
        },
      ],
    },
    ...extra,
  };
}

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'blockgate-ops-sec-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('tokens: created once in the data directory (0600), never logged, read-only and admin roles', async (t) => {
  const dir = await tempDir(t);
  const configPath = join(dir, 'member.json');
  await writeFile(configPath, JSON.stringify(memberConfig()));
  const dataDir = join(dir, 'data');
  const member = startMember(t, ['--config', configPath, '--data-dir', dataDir]);
  const admin = await memberApi(member, 'admin');
  const read = await memberApi(member, 'read');
  const adminPath = await tokenFile(member, 'admin');
  t.equal(adminPath, join(dataDir, 'api', 'admin.token'), 'the admin token lives in DATA/api/admin.token');
  t.equal((await stat(adminPath)).mode & 0o777, 0o600, 'token file mode 0600');
  t.equal((await stat(await tokenFile(member, 'read'))).mode & 0o777, 0o600);
  t.equal((await stat(join(dataDir, 'api'))).mode & 0o777, 0o700, 'token directory mode 0700');
  const created = member.lines.filter((l) => l.component === 'api-auth' && /created/.test(String(l.msg)));
  t.equal(created.length, 2, 'one "created" line per token');
  t.match(String(created[0]!.msg), adminPath, 'the creation line says where the token is');
  t.match(admin.token, /^bga_[A-Za-z0-9_-]{43}$/);
  t.match(read.token, /^bgr_[A-Za-z0-9_-]{43}$/);

  const anonymous = await admin.request('/api/v1/status', { token: null });
  t.equal(anonymous.status, 401, 'status needs a token');
  t.match(anonymous.headers.get('www-authenticate'), /^Bearer realm="blockgate"/);
  t.match(((await anonymous.json()) as { error: string }).error, /Authorization: Bearer/);
  t.equal((await admin.request('/api/v1/devices/mp/actions/failback', { method: 'POST', body: {}, token: null })).status, 401, 'actions need a token');
  t.equal((await admin.request('/api/v1/status', { token: 'bga_' + 'x'.repeat(43) })).status, 401, 'a wrong token is refused');
  t.equal((await admin.request('/api/v1/status', { headers: { authorization: `Basic ${admin.token}` }, token: null })).status, 401, 'only Bearer');

  t.equal((await read.request('/api/v1/status')).status, 200, 'the read-only token reads');
  t.same((await read.json('/api/v1/whoami')).body, { member: 'sec', role: 'read' });
  t.same((await admin.json('/api/v1/whoami')).body, { member: 'sec', role: 'admin' });
  const readAct = await read.request('/api/v1/devices/mp/actions/failback', { method: 'POST', body: {} });
  t.equal(readAct.status, 403, 'the read-only token cannot act');
  t.match(((await readAct.json()) as { error: string }).error, /admin token/);
  // Admitted, the action reaches the set, which has nothing to fail back (409 with its reason).
  const adminAct = await admin.request('/api/v1/devices/mp/actions/failback', { method: 'POST', body: {} });
  t.equal(adminAct.status, 409, 'the admin token acts');
  t.match(((await adminAct.json()) as { error: string }).error, /already on the preferred usable path/);

  t.equal((await admin.request('/metrics', { token: null })).status, 200, '/metrics is open by default');
  const page = await admin.request('/', { token: null });
  t.equal(page.status, 200, 'the dashboard page loads without a token (it holds no data)');
  t.equal(page.headers.get('x-frame-options'), 'DENY', 'and may not be framed by another site');

  const status = await (await admin.request('/api/v1/status')).text();
  const everything = JSON.stringify(member.lines) + member.stderr + status;
  t.notOk(everything.includes(admin.token), 'the admin token is in no log line nor the status');
  t.notOk(everything.includes(read.token), 'nor the read-only token');
  t.notOk(everything.includes('chap-secret-value-1'), 'nor the CHAP secret');

  t.equal((await member.terminate()).code, 0);
  const again = startMember(t, ['--data-dir', dataDir]);
  const adminAgain = await memberApi(again, 'admin');
  t.equal(adminAgain.token, admin.token, 'a restart keeps the token');
  t.notOk(again.lines.some((l) => l.component === 'api-auth' && /created/.test(String(l.msg))), 'and creates none');
  t.equal((await adminAgain.request('/api/v1/status')).status, 200);

  const shown = await runCli(['show-config', '--data-dir', dataDir]);
  t.equal(shown.code, 0);
  t.match(shown.stdout, /secret: \(redacted\)/, 'show-config hides the CHAP secret');
  t.notOk(shown.stdout.includes('chap-secret-value-1'));
  t.equal((await again.terminate()).code, 0);
});

t.test('no page can drive the API: foreign Origin and non-JSON state changes are refused', async (t) => {
  const dir = await tempDir(t);
  const configPath = join(dir, 'member.json');
  await writeFile(configPath, JSON.stringify(memberConfig()));
  const member = startMember(t, ['--config', configPath, '--data-dir', join(dir, 'data')]);
  const admin = await memberApi(member);
  const failback = '/api/v1/devices/mp/actions/failback';

  // What a form or a no-CORS fetch on any web page can send: text/plain, url-encoded, multipart.
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
    const res = await admin.request(failback, { method: 'POST', body: '{}', headers: { 'content-type': type } });
    t.equal(res.status, 415, `${type} POST refused even with the admin token`);
    t.match(((await res.json()) as { error: string }).error, /application\/json/);
  }
  const untyped = await fetch(`${admin.base}${failback}`, { method: 'POST', headers: { authorization: `Bearer ${admin.token}` } });
  t.equal(untyped.status, 415, 'a POST without a content type is refused');
  // Admitted requests reach the set, which refuses (409): nothing to fail back.
  t.equal((await admin.request(failback, { method: 'POST', body: {}, headers: { 'content-type': 'application/json; charset=utf-8' } })).status, 409, 'JSON with parameters is fine');

  const foreign = await admin.request(failback, { method: 'POST', body: {}, headers: { origin: 'http://evil.example' } });
  t.equal(foreign.status, 403, 'a foreign Origin is refused');
  t.match(((await foreign.json()) as { error: string }).error, /foreign origin/);
  t.equal((await admin.request('/api/v1/status', { headers: { origin: 'http://evil.example' } })).status, 403, 'for reads too');
  t.equal((await admin.request('/api/v1/status', { headers: { origin: 'null' } })).status, 403, 'an opaque origin is foreign');
  t.equal((await admin.request('/api/v1/status', { headers: { 'sec-fetch-site': 'cross-site' } })).status, 403, 'Sec-Fetch-Site cross-site is refused');
  t.equal((await admin.request('/api/v1/status', { headers: { 'sec-fetch-site': 'same-site' } })).status, 403, 'a sibling site too');
  t.equal((await admin.request(failback, { method: 'POST', body: {}, headers: { origin: admin.base } })).status, 409, 'the API’s own origin (the dashboard) is fine');
  t.equal((await admin.request('/api/v1/status', { headers: { 'sec-fetch-site': 'same-origin' } })).status, 200);
  t.equal((await member.terminate()).code, 0);
});

t.test('token rotate: the old token stops working at once; an operator-chosen token is accepted', async (t) => {
  const dir = await tempDir(t);
  const configPath = join(dir, 'member.json');
  await writeFile(configPath, JSON.stringify(memberConfig()));
  const member = startMember(t, ['--config', configPath, '--data-dir', join(dir, 'data')]);
  const admin = await memberApi(member);
  const read = await memberApi(member, 'read');
  const path = await tokenFile(member);

  t.equal((await read.request('/api/v1/tokens/rotate', { method: 'POST', body: { role: 'admin' } })).status, 403, 'the read-only token cannot rotate');
  const rotated = await admin.json<{ role: string; token: string; path: string }>('/api/v1/tokens/rotate', { method: 'POST', body: { role: 'admin' } });
  t.equal(rotated.status, 200);
  t.equal(rotated.body.path, path);
  t.not(rotated.body.token, admin.token);
  t.equal(await readToken(path), rotated.body.token, 'the file holds the new token');
  t.equal((await stat(path)).mode & 0o777, 0o600, 'still 0600');
  t.equal((await admin.request('/api/v1/status')).status, 401, 'the old admin token is dead');
  const renewed = apiAt(admin.base, rotated.body.token);
  t.equal((await renewed.request('/api/v1/status')).status, 200, 'the new one works');
  t.equal((await read.request('/api/v1/status')).status, 200, 'the read-only token is untouched');

  const chosen = 'cluster-shared-read-token-0123456789abcdef';
  const set = await renewed.json('/api/v1/tokens/rotate', { method: 'POST', body: { role: 'read', token: chosen } });
  t.equal(set.status, 200);
  t.equal((await read.request('/api/v1/status')).status, 401, 'the old read-only token is dead');
  t.equal((await apiAt(admin.base, chosen).request('/api/v1/status')).status, 200, 'the chosen one reads');
  for (const body of [{ role: 'root' }, { role: 'read', token: 'short' }, { role: 'read', token: rotated.body.token }, { role: 'admin', extra: 1 }]) {
    t.equal((await renewed.request('/api/v1/tokens/rotate', { method: 'POST', body })).status, 400, `refused: ${JSON.stringify(body)}`);
  }
  t.notOk(JSON.stringify(member.lines).includes(rotated.body.token), 'the rotated token is not logged');
  t.notOk(JSON.stringify(member.lines).includes(chosen));
  t.equal((await member.terminate()).code, 0);
});

/** GET over HTTPS trusting only `ca`. */
function httpsGet(url: string, ca: Buffer, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('TLS for the API (certificate and key from the config); /metrics can require a token', async (t) => {
  const dir = await tempDir(t);
  const cert = join(dir, 'api.crt');
  const key = join(dir, 'api.key');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert]);
  const configPath = join(dir, 'member.json');
  await writeFile(configPath, JSON.stringify(memberConfig({ api: { listen: ['127.0.0.1:0'], tls: { cert, key }, openMetrics: false } })));
  const member = startMember(t, ['--config', configPath, '--data-dir', join(dir, 'data')]);
  const listen = await member.ready();
  const token = await readToken(await tokenFile(member));
  const ca = await readFile(cert);
  const base = `https://${listen.api![0]}`;

  const status = await httpsGet(`${base}/api/v1/status`, ca, token);
  t.equal(status.status, 200, 'HTTPS with the configured certificate');
  t.equal((JSON.parse(status.body) as { member: string }).member, 'sec');
  await t.rejects(fetch(`http://${listen.api![0]}/api/v1/status`), 'plain HTTP gets no answer');
  await t.rejects(httpsGet(`${base}/api/v1/status`, Buffer.from('')), 'a client that does not trust the certificate refuses it');
  t.equal((await httpsGet(`${base}/metrics`, ca)).status, 401, 'openMetrics: false puts /metrics behind the token');
  t.equal((await httpsGet(`${base}/metrics`, ca, token)).status, 200);
  t.ok(member.lines.some((l) => l.msg === 'API listener started' && l.tls === true), 'the log says the listener is TLS');
  const cli = await runCli(['status', '--member', base, '--cacert', cert, '--token', token]);
  t.equal(cli.code, 0, `the CLI trusts the certificate given with --cacert: ${cli.stderr}`);
  const untrusted = await runCli(['status', '--member', base, '--token', token]);
  t.equal(untrusted.code, 3, 'and refuses the member without it');
  t.match(untrusted.stderr, /cannot reach the member at https:.*(SELF_SIGNED|self[- ]signed|UNABLE_TO_VERIFY)/i);
  t.notOk(JSON.stringify(member.lines).includes((await readFile(key, 'utf8')).split('\n')[1]!), 'the key is not logged');
  t.equal((await member.terminate()).code, 0);
});
