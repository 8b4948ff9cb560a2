import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { MultipathDevice } from '../../fabric/layers/multipath/multipath.js';
import { FabricSwitch } from '../../fabric/switch.js';
import { FailoverSets } from '../../failover/sets.js';
import { ApiServer } from '../../gateway/api/server.js';
import { tokenPath } from '../../gateway/api/tokens.js';
import { apiAt, readToken } from '../helpers/api.js';
import { parseExposition, value } from '../helpers/prometheus.js';

/** An in-process API over a switch holding a multipath device and a plain disk. */
async function setup(t: { teardown(fn: () => unknown): void }) {
  const dataDir = await mkdtemp(join(tmpdir(), 'blockgate-actions-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const fabric = new FabricSwitch();
  const paths = [new MemoryBackend({ name: 'p0', size: 65536 }), new MemoryBackend({ name: 'p1', size: 65536 })];
  for (const p of paths) fabric.addDevice(p);
  const mp = new MultipathDevice({ name: 'mp', paths });
  fabric.addDevice(mp);
  fabric.addDevice(new MemoryBackend({ name: 'plain', size: 4096 }));
  const sets = new FailoverSets();
  sets.addMultipath(mp, { probeIntervalMs: 0, failback: 'manual' });
  sets.start();
  const server = new ApiServer({ fabric, sets, member: 'unit', listen: [{ host: '127.0.0.1', port: 0 }], dataDir, addresses: () => ({}) });
  await server.start();
  t.teardown(async () => {
    sets.stop();
    await server.stop({ drainMs: 0 });
    await mp.close();
    await fabric.close();
  });
  const a = server.addresses()[0] as { host: string; port: number };
  const api = apiAt(`http://${a.host}:${a.port}`, await readToken(tokenPath(dataDir, 'admin')));
  return { base: api.base, api, mp };
}

t.test('multipath actions, path state metrics and HTTP errors', async (t) => {
  const { base, api } = await setup(t);
  const post = async (url: string, body?: string): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await api.request(url.slice(base.length), { method: 'POST', ...(body !== undefined && { body }) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const m = parseExposition(await (await fetch(`${base}/metrics`)).text());
  t.equal(value(m, 'blockgate_path_state', { device: 'mp', path: 'p0', state: 'active' }), 1);
  t.equal(value(m, 'blockgate_path_state', { device: 'mp', path: 'p1', state: 'standby' }), 1);
  t.equal(value(m, 'blockgate_path_state', { device: 'mp', path: 'p1', state: 'active' }), 0);

  const onPreferred = await post(`${base}/api/v1/devices/mp/actions/failback`);
  t.equal(onPreferred.status, 409, 'failback while on the preferred path is refused');
  t.match(onPreferred.json.error, /already on the preferred usable path p0/);
  const offline = await post(`${base}/api/v1/devices/mp/actions/offline`, '{"path":"p0"}');
  t.equal(offline.status, 200, 'the active path taken offline');
  const offlineState = offline.json.set as { activePath: string; members: Array<{ name: string; state: string; role: string }> };
  t.equal(offlineState.activePath, 'p1', 'I/O moved to the other path');
  t.same(offlineState.members.map((p) => `${p.name}:${p.role}/${p.state}`), ['p0:alternate/offline', 'p1:primary/active']);
  const lastPath = await post(`${base}/api/v1/devices/mp/actions/offline`, '{"path":"p1"}');
  t.equal(lastPath.status, 409, 'the last usable path cannot be taken offline');
  t.match(lastPath.json.error, /only usable path/);
  const again = await post(`${base}/api/v1/devices/mp/actions/offline`, '{"path":"p0"}');
  t.equal(again.status, 409);
  t.match(again.json.error, /already offline/);
  const online = await post(`${base}/api/v1/devices/mp/actions/online`, '{"path":"p0"}');
  t.equal(online.status, 200);
  t.equal(online.json.state, 'standby', 'back on standby: failback is manual');
  const failback = await post(`${base}/api/v1/devices/mp/actions/failback`);
  t.equal(failback.status, 200, 'failback takes no body');
  t.equal((failback.json.status as { state: string }).state, 'optimal', 'the answer carries the device status');
  t.equal(failback.json.activePath, 'p0');
  const notMarginal = await post(`${base}/api/v1/devices/mp/actions/clearMarginal`, '{"path":"p1"}');
  t.equal(notMarginal.status, 409, 'refused in the current state');
  t.match(notMarginal.json.error, /path p1 of mp is not marginal \(it is standby\)/);
  const unknownPath = await post(`${base}/api/v1/devices/mp/actions/clearMarginal`, '{"path":"p9"}');
  t.equal(unknownPath.status, 400);
  t.match(unknownPath.json.error, /has no path "p9"/);
  const noPath = await post(`${base}/api/v1/devices/mp/actions/clearMarginal`, '{"replica":"p1"}');
  t.equal(noPath.status, 400);
  t.match(noPath.json.error, /needs a JSON body with a "path"/);
  const mirrorAction = await post(`${base}/api/v1/devices/mp/actions/reintegrate`, '{"replica":"p1"}');
  t.equal(mirrorAction.status, 400, 'a mirror action on a multipath device');
  t.match(mirrorAction.json.error, /available: failback, clearMarginal, offline, online/);
  const plain = await post(`${base}/api/v1/devices/plain/actions/failback`);
  t.equal(plain.status, 400);
  t.match(plain.json.error, /plain has no operator actions/);
  const proto = await post(`${base}/api/v1/devices/mp/actions/__proto__`);
  t.equal(proto.status, 400, 'inherited names are not actions');

  const get = await api.request('/api/v1/devices/mp/actions/failback');
  t.equal(get.status, 405, 'actions need POST');
  t.match(((await get.json()) as { error: string }).error, /use POST/);
  const postMetrics = await api.request('/metrics', { method: 'POST' });
  t.equal(postMetrics.status, 405);
  await postMetrics.body?.cancel();
  const status = (await (await api.request('/api/v1/status')).json()) as {
    member: string;
    devices: Array<{ name: string; detail?: unknown }>;
    failoverSets: Array<{ name: string; kind: string; composition: string; serving: string; members: Array<{ name: string; role: string }> }>;
  };
  t.equal(status.member, 'unit');
  t.same(status.devices.map((d) => d.name), ['p0', 'p1', 'mp', 'plain']);
  t.equal(status.devices.find((d) => d.name === 'mp')!.detail, undefined, 'set state is not hidden in free-form detail');
  t.same(
    status.failoverSets.map((s) => [s.name, s.kind, s.composition, s.serving, s.members.map((m) => m.role).join(',')]),
    [['mp', 'multipath', 'single', 'one', 'primary,secondary']],
  );
});
