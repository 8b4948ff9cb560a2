import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memberApi } from '../helpers/api.js';
import { ensureBuilt, nbdUri, runCli, startMember } from '../helpers/blockgate-cli.js';
import { nbdsh, runTool, waitFor } from '../helpers/clients.js';
import { parseExposition, value } from '../helpers/prometheus.js';

ensureBuilt();

t.test('a member serves metrics, status, actions and the dashboard over --api', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'blockgate-api-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const configPath = join(dir, 'member.json');
  await writeFile(
    configPath,
    JSON.stringify({
      member: 'api-e2e',
      backends: [
        { name: 'r0', type: 'memory', size: '4MiB' },
        { name: 'r1', type: 'memory', size: '4MiB' },
        { name: 'r2', type: 'memory', size: '4MiB' },
      ],
      devices: [{ name: 'm0', type: 'mirror', replicas: ['r0', 'r1'], assumeClean: true }],
      exports: [{ name: 'vol', device: 'm0' }],
      nbd: { listen: [{ host: '127.0.0.1', port: 0 }] },
    }),
  );
  const member = startMember(t, ['--config', configPath, '--data-dir', join(dir, 'data'), '--nbd', '127.0.0.1:0']);
  const listen = await member.ready();
  t.equal(listen.api?.length, 1, 'the API listens once');
  const api = `http://${listen.api![0]}`;
  const admin = await memberApi(member);
  t.match(listen.api![0], /^127\.0\.0\.1:\d+$/);
  t.not(listen.api![0], '127.0.0.1:9810', 'never the well-known port in tests');

  const uri = nbdUri(listen.nbd![0]!, 'vol');
  await nbdsh(uri, "h.pwrite(b'\\x5a' * 65536, 0)\nh.pwrite(b'\\xa5' * 4096, 65536)\nh.flush()");
  await runTool('qemu-io', ['-f', 'raw', '-c', 'read -P 0x5a 0 64k', '-c', 'read -P 0xa5 64k 4k', uri]);

  const metrics = await fetch(`${api}/metrics`);
  t.equal(metrics.status, 200);
  t.match(metrics.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const m = parseExposition(await metrics.text());
  t.equal(value(m, 'blockgate_device_ops_total', { device: 'm0', op: 'write' }), 2, 'the two nbdsh writes');
  t.equal(value(m, 'blockgate_device_bytes_total', { device: 'm0', op: 'write' }), 65536 + 4096);
  t.ok(value(m, 'blockgate_device_bytes_total', { device: 'm0', op: 'read' }) >= 65536 + 4096, 'qemu-io reads counted');
  t.equal(value(m, 'blockgate_device_latency_seconds_count', { device: 'm0', op: 'write' }), 2);
  t.equal(value(m, 'blockgate_device_state', { device: 'm0', state: 'optimal' }), 1);
  t.equal(value(m, 'blockgate_device_state', { device: 'm0', state: 'degraded' }), 0);
  t.equal(value(m, 'blockgate_replica_state', { device: 'm0', replica: 'r1', state: 'in-sync' }), 1);
  t.equal(value(m, 'blockgate_port_ops_total', { port: 'api-e2e/nbd', op: 'write' }), 2, 'per-port counters');

  const status = (await (await admin.request('/api/v1/status')).json()) as {
    member: string;
    exports: Array<{ name: string; device: string }>;
    devices: Array<{ name: string; state: string }>;
    failoverSets: Array<{ name: string; kind: string; state: string; members: Array<{ name: string; role: string; state: string }> }>;
    frontEnds: Record<string, string[]>;
  };
  t.equal(status.member, 'api-e2e');
  t.same(status.exports.map((e) => [e.name, e.device]), [['vol', 'm0']]);
  const mirror = status.devices.find((d) => d.name === 'm0');
  t.equal(mirror?.state, 'optimal');
  const set = status.failoverSets.find((s) => s.name === 'm0');
  t.equal(set?.kind, 'mirror');
  t.same(set?.members.map((r) => [r.name, r.role, r.state]), [['r0', 'primary', 'in-sync'], ['r1', 'secondary', 'in-sync']], 'both replicas listed with their roles');
  t.same(status.frontEnds.nbd, listen.nbd, 'front-end addresses as logged');
  t.same(status.frontEnds.api, listen.api);

  const bad = await admin.request('/api/v1/devices/m0/actions/explode', { method: 'POST' });
  t.equal(bad.status, 400);
  t.match(((await bad.json()) as { error: string }).error, /unknown action "explode".*available: reintegrate, clearQuarantine/);
  const noBody = await admin.request('/api/v1/devices/m0/actions/reintegrate', { method: 'POST', body: 'not json' });
  t.equal(noBody.status, 400);
  t.match(((await noBody.json()) as { error: string }).error, /not valid JSON/);
  const noReplica = await admin.request('/api/v1/devices/m0/actions/reintegrate', { method: 'POST', body: '{}' });
  t.equal(noReplica.status, 400);
  t.match(((await noReplica.json()) as { error: string }).error, /"replica"/);
  const ghost = await admin.request('/api/v1/devices/nope/actions/failback', { method: 'POST' });
  t.equal(ghost.status, 404);
  t.match(((await ghost.json()) as { error: string }).error, /no device named "nope"/);
  const wrongReplica = await admin.request(`/api/v1/devices/m0/actions/clearQuarantine`, { method: 'POST', body: '{"replica":"r1"}' });
  t.equal(wrongReplica.status, 409, 'the mirror refuses: r1 is not quarantined');
  t.match(((await wrongReplica.json()) as { error: string }).error, /not quarantined \(it is in-sync\)/);
  const inSync = await admin.request(`/api/v1/devices/m0/actions/reintegrate`, { method: 'POST', body: '{"replica":"r1"}' });
  t.equal(inSync.status, 409, 'reintegrating an in-sync replica is refused with the reason');
  t.match(((await inSync.json()) as { error: string }).error, /already in sync/);
  const offline = await admin.request(`/api/v1/devices/m0/actions/offline`, { method: 'POST', body: '{"replica":"r1"}' });
  t.equal(offline.status, 200, 'a replica taken offline');
  const last = await admin.request(`/api/v1/devices/m0/actions/offline`, { method: 'POST', body: '{"replica":"r0"}' });
  t.equal(last.status, 409, 'the last in-sync replica cannot be taken offline');
  t.match(((await last.json()) as { error: string }).error, /last in-sync replica/);
  const back = await admin.request(`/api/v1/devices/m0/actions/reintegrate`, { method: 'POST', body: '{"replica":"r1"}' });
  t.equal(back.status, 200, 'an offline replica reintegrated');
  await waitFor(async () => ((await (await admin.request('/api/v1/status')).json()) as { devices: Array<{ name: string; state: string }> }).devices.find((d) => d.name === 'm0')?.state === 'optimal', 'resync of r1');

  const page = await fetch(`${api}/`);
  t.equal(page.status, 200);
  t.match(page.headers.get('content-type'), /^text\/html/);
  t.match(await page.text(), /<html[\s\S]*<script type="module" src="assets\/dashboard\/main\.js">[\s\S]*<\/html>/, 'the page loads its script from the API');
  const script = await fetch(`${api}/assets/dashboard/main.js`);
  t.equal(script.status, 200, 'which the API serves');
  t.match(script.headers.get('content-type'), /^text\/javascript/);
  t.match(await (await fetch(`${api}/assets/dashboard/connection.js`)).text(), /api\/v1\/live/, 'its modules follow the live stream');
  t.equal((await fetch(`${api}/assets/tokens.js`)).status, 404, 'nothing outside the asset list (gateway/api/tokens.js is compiled next to them)');
  t.equal((await admin.request('/nowhere')).status, 404);

  const spare = await admin.request('/api/v1/devices/m0/actions/addSpare', { method: 'POST', body: { device: 'r2' } });
  t.equal(spare.status, 200, 'an unused device of the configuration becomes a spare');
  t.same(((await spare.json()) as { set: { members: Array<{ name: string; role: string }> } }).set.members.map((r) => `${r.name}:${r.role}`), ['r0:primary', 'r1:secondary', 'r2:alternate']);
  const taken = await admin.request('/api/v1/devices/m0/actions/addSpare', { method: 'POST', body: { device: 'r0' } });
  t.equal(taken.status, 409, 'a device in use cannot');

  const stopped = await member.terminate();
  t.equal(stopped.code, 0, 'stops cleanly with the API running');
  const stored = await runCli(['show-config', '--data-dir', join(dir, 'data')]);
  t.match(stored.stdout, /from api:spare-added:m0:r2/, 'the change is a new configuration generation');
  t.match(stored.stdout, /replicas:\s*\n\s*- r0\s*\n\s*- r1\s*\n[^-]*spares:\s*\n\s*- r2/, 'which lists the spare, so a restart keeps it');
});
