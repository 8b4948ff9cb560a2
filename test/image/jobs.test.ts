/**
 * `blockgate image import|export` against a real member: qemu-img does the conversion through
 * the member's jobs API, holes are not sent as data (the job's own port counters say what
 * crossed the export), the copy is exact (qemu-img compare), progress is visible in the API
 * and as plain lines, and mistakes are refused before anything is written.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, nbdUri, runCli, startMember } from '../helpers/blockgate-cli.js';
import { runTool } from '../helpers/clients.js';
import { startNbdkit } from '../helpers/nbdkit-server.js';

ensureBuilt();
const dir = mkdtempSync(join(tmpdir(), 'blockgate-image-jobs-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 1024 * 1024;

interface JobView {
  id: string;
  kind: string;
  state: string;
  export: string;
  file: string;
  format: string;
  bytesDone: number;
  bytesTotal: number;
  bytesPerSecond: number;
  etaSeconds: number | null;
  error: string | null;
  io: { readBytes: number; writtenBytes: number; zeroedBytes: number };
}

/** A member's API as the dashboard uses it: with its admin token. */
interface Api {
  readonly base: string;
  readonly token: string;
}

async function api<T>(to: Api, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${to.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${to.token}`, ...(method !== 'GET' && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as T };
}

/** A member with a 128 MiB file-backed export `disk`, a read-only one, and a 16 MiB one. */
async function member(t: Test, extra: { backends?: string; exports?: string } = {}) {
  const d = mkdtempSync(join(dir, 'm-'));
  const config = join(d, 'member.yaml');
  writeFileSync(
    config,
    `backends:
  - {name: disk, type: file, path: ${join(d, 'disk.img')}, create: true, size: 128MiB}
  - {name: small, type: memory, size: 16MiB}
${extra.backends ?? ''}
exports:
  - {name: disk, device: disk}
  - {name: frozen, device: disk, readOnly: true}
  - {name: small, device: small}
${extra.exports ?? ''}
`,
  );
  const m = startMember(t, ['--config', config, '--data-dir', join(d, 'data'), '--nbd', '127.0.0.1:0']);
  const listen = await m.ready();
  const tokenFile = join(d, 'data', 'api', 'admin.token');
  const apiBase: Api = { base: `http://${listen.api![0]}`, token: readFileSync(tokenFile, 'utf8').trim() };
  return { m, nbd: listen.nbd![0]!, apiBase, memberArgs: ['--member', apiBase.base, '--token-file', tokenFile] };
}

/** A 64 MiB qcow2 with data in two 1 MiB regions and holes elsewhere. */
async function sparseImage(name: string): Promise<string> {
  const file = join(dir, name);
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', file, '64M']);
  await runTool('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 1M 1M', '-c', 'write -P 0xa5 40M 1M', file]);
  return file;
}

t.test('import writes a sparse qcow2 onto an export: data only where the image has some, holes zeroed, exact copy', async (t) => {
  const { nbd, apiBase, memberArgs } = await member(t);
  const image = await sparseImage('sparse.qcow2');
  // Old contents where the image has holes: the import must leave zeroes there.
  await runTool('qemu-io', ['-f', 'raw', '-c', 'write -P 0xee 8M 1M', '-c', 'write -P 0xee 60M 1M', nbdUri(nbd, 'disk')]);

  const r = await runCli(['image', 'import', image, 'disk', ...memberArgs]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^imported .*sparse\.qcow2 \(qcow2\) onto export disk: 64\.0 MiB, 2\.00 MiB of data written, /m);
  t.match(r.stderr, /^import sparse\.qcow2 -> disk: 100% 64\.0 MiB of 64\.0 MiB$/m, 'plain progress lines when not on a terminal');
  t.notMatch(r.stderr, /\x1b\[/, 'no terminal escapes in plain output');

  const cmp = await runTool('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', image, nbdUri(nbd, 'disk')], { allowFailure: true });
  t.equal(cmp.code, 0, `the export holds the image: ${cmp.stdout}${cmp.stderr}`);

  const { body } = await api<{ jobs: JobView[] }>(apiBase, 'GET', '/api/v1/jobs');
  const job = body.jobs[0]!;
  t.match(job, { kind: 'image-import', state: 'succeeded', export: 'disk', format: 'qcow2', bytesDone: 64 * MiB, bytesTotal: 64 * MiB, error: null });
  t.equal(job.io.writtenBytes, 2 * MiB, 'only the 2 MiB of data crossed the export as data');
  t.ok(job.io.zeroedBytes >= 62 * MiB, `holes were zeroed without data (${job.io.zeroedBytes} bytes)`);
});

t.test('export writes a sparse qcow2, raw and vmdk; reads only allocated data; refuses to overwrite unless told', async (t) => {
  const { nbd, apiBase, memberArgs } = await member(t);
  const image = await sparseImage('source.qcow2');
  t.equal((await runCli(['image', 'import', image, 'disk', ...memberArgs])).code, 0);

  const out = join(dir, 'exported.qcow2');
  let r = await runCli(['image', 'export', 'disk', out, ...memberArgs]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /exported disk to .*exported\.qcow2 \(qcow2\): 128 MiB/);
  const info = JSON.parse((await runTool('qemu-img', ['info', '--output=json', out])).stdout) as { format: string; 'virtual-size': number; 'actual-size': number };
  t.equal(info.format, 'qcow2');
  t.equal(info['virtual-size'], 128 * MiB);
  t.ok(info['actual-size'] < 8 * MiB, `the qcow2 holds only allocated data (${info['actual-size']} bytes on disk)`);
  t.equal((await runTool('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', nbdUri(nbd, 'disk'), out], { allowFailure: true })).code, 0);
  const job = (await api<{ jobs: JobView[] }>(apiBase, 'GET', '/api/v1/jobs')).body.jobs[0]!;
  t.ok(job.io.readBytes <= 4 * MiB, `holes were not read (${job.io.readBytes} bytes read)`);

  r = await runCli(['image', 'export', 'disk', out, ...memberArgs]);
  t.equal(r.code, 5, 'refused (409): exit status 5');
  t.match(r.stderr, /exported\.qcow2 exists \(set overwrite to replace it\) \(HTTP 409\)/);
  r = await runCli(['image', 'export', 'disk', out, '--overwrite', ...memberArgs]);
  t.equal(r.code, 0, r.stderr);

  const raw = join(dir, 'exported.img');
  t.equal((await runCli(['image', 'export', 'disk', raw, ...memberArgs])).code, 0);
  t.equal(statSync(raw).size, 128 * MiB);
  t.ok(statSync(raw).blocks * 512 < 16 * MiB, `the raw file is sparse (${statSync(raw).blocks * 512} bytes allocated)`);

  // vmdk both ways: export, then import it onto another export and compare.
  const vmdk = join(dir, 'exported.vmdk');
  t.equal((await runCli(['image', 'export', 'disk', vmdk, ...memberArgs])).code, 0);
  t.equal(JSON.parse((await runTool('qemu-img', ['info', '--output=json', vmdk])).stdout).format, 'vmdk');
  const small = await runCli(['image', 'import', vmdk, 'small', ...memberArgs]);
  t.equal(small.code, 5, 'a 128 MiB image does not fit a 16 MiB export');
  t.match(small.stderr, /holds 134217728 bytes, more than export "small" \(16777216 bytes\) \(HTTP 409\)/);
});

t.test('mistakes are refused before anything runs, with the reason and exit status', async (t) => {
  const { memberArgs, apiBase } = await member(t);
  const image = await sparseImage('refused.qcow2');
  const cases: Array<[string[], number, RegExp]> = [
    [['image', 'import', join(dir, 'missing.qcow2'), 'disk'], 1, /missing\.qcow2: no such file on the member \(HTTP 400\)/],
    [['image', 'import', image, 'nope'], 1, /no export named "nope" \(HTTP 404\)/],
    [['image', 'import', image, 'frozen'], 5, /export "frozen" is read-only \(HTTP 409\)/],
    [['image', 'import', image, 'disk', '--format', 'vdi'], 2, /--format must be one of raw, qcow2, vmdk/],
    [['image', 'import', image], 2, /expected: blockgate image import FILE EXPORT/],
    [['image', 'jobs', '--overwrite'], 2, /image jobs takes no --overwrite/],
    [['image', 'export', 'disk', join(dir, 'no-such-dir', 'x.img')], 1, /no-such-dir: no such directory on the member \(HTTP 400\)/],
    [['image', 'watch', 'no-such-job'], 1, /no job "no-such-job" \(HTTP 404\)/],
  ];
  for (const [args, code, message] of cases) {
    const r = await runCli([...args, ...memberArgs]);
    t.equal(r.code, code, args.join(' '));
    t.match(r.stderr, message, args.join(' '));
  }
  // A text file is not an image qemu-img can convert as qcow2.
  const text = join(dir, 'not-an-image.qcow2');
  writeFileSync(text, 'hello\n');
  const r = await runCli(['image', 'import', text, 'disk', '--format', 'qcow2', ...memberArgs]);
  t.equal(r.code, 1);
  t.match(r.stderr, /Image is not in qcow2 format.*\(HTTP 400\)/);

  const unknown = await api<{ error: string }>(apiBase, 'POST', '/api/v1/jobs', { kind: 'image-import', export: 'disk', file: image, extra: 1 });
  t.same(unknown, { status: 400, body: { error: 'unknown field: extra' } });
  const relative = await api<{ error: string }>(apiBase, 'POST', '/api/v1/jobs', { kind: 'image-import', export: 'disk', file: 'x.qcow2' });
  t.same(relative, { status: 400, body: { error: 'file must be an absolute path on the member' } });
  t.equal((await api(apiBase, 'PUT', '/api/v1/jobs')).status, 405);
  const anonymous = await fetch(`${apiBase.base}/api/v1/jobs`);
  t.equal(anonymous.status, 401, 'jobs need the API token');
  const noToken = await runCli(['image', 'jobs', '--member', apiBase.base]);
  t.equal(noToken.code, 4, 'exit status 4: not allowed');
  t.match(noToken.stderr, /needs "Authorization: Bearer TOKEN".*\(HTTP 401\)/);
  t.same((await api<{ jobs: JobView[] }>(apiBase, 'GET', '/api/v1/jobs')).body.jobs, [], 'no job was started');

  const down = await runCli(['image', 'jobs', '--member', 'http://127.0.0.1:1']);
  t.equal(down.code, 3, 'exit status 3: no member reachable');
  t.match(down.stderr, /cannot reach the member at http:\/\/127\.0\.0\.1:1: ECONNREFUSED/);
});

t.test('a slow import shows progress in the API, keeps the export busy, and is cancelled on request', async (t) => {
  // The export's backend is nbdkit with one thread and every write delayed by a second: the
  // 64 MiB import would take half a minute, and is cancelled well before.
  const slow = await startNbdkit(t, { plugin: ['memory', 'size=64M'], filters: ['delay'], args: ['wdelay=1'], flags: ['-t', '1'] });
  const { apiBase, memberArgs } = await member(t, {
    backends: `  - {name: slow, type: nbd, address: "${slow.address}"}\n`,
    exports: `  - {name: slow, device: slow}\n`,
  });
  const image = join(dir, 'dense.raw');
  await runTool('qemu-img', ['create', '-q', '-f', 'raw', image, '64M']);
  await runTool('qemu-io', ['-f', 'raw', '-c', 'write -P 0x11 0 64M', image]);

  const started = await runCli(['image', 'import', image, 'slow', '--detach', ...memberArgs]);
  t.equal(started.code, 0, started.stderr);
  const id = started.stdout.trim();
  t.match(id, /^[0-9a-f-]{36}$/, 'with --detach the job id is printed');

  // Wait (event-free, by polling the API the way a dashboard does) until some progress shows.
  let view: JobView;
  for (;;) {
    view = (await api<JobView>(apiBase, 'GET', `/api/v1/jobs/${id}`)).body;
    if (view.state !== 'running' || view.bytesDone > 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(view.state, 'running');
  t.ok(view.bytesDone > 0 && view.bytesDone < view.bytesTotal, `part done: ${view.bytesDone} of ${view.bytesTotal}`);
  t.equal(view.bytesTotal, 64 * MiB);
  t.ok(view.bytesPerSecond > 0, 'a rate is known');
  t.ok(view.etaSeconds !== null && view.etaSeconds > 0, 'an ETA is known');

  const busy = await runCli(['image', 'import', image, 'slow', ...memberArgs]);
  t.equal(busy.code, 5, 'exit status 5: refused in the current state');
  t.match(busy.stderr, new RegExp(`export "slow" is busy with job ${id} \\(image-import\\) \\(HTTP 409\\)`));

  const list = await runCli(['image', 'jobs', ...memberArgs]);
  t.match(list.stdout, /^ID +KIND +STATE +EXPORT +DONE +SIZE +RATE +ETA +FILE$/m);
  t.match(list.stdout, new RegExp(`^${id} +import +running +slow +\\d+% +64\\.0 MiB +[\\d.]+ [KM]?i?B/s +\\S+ +.*dense\\.raw$`, 'm'));

  const cancelled = await runCli(['image', 'cancel', id, ...memberArgs]);
  t.equal(cancelled.code, 0, cancelled.stderr);
  t.equal(cancelled.stdout, `${id}: cancelled\n`);
  view = (await api<JobView>(apiBase, 'GET', `/api/v1/jobs/${id}`)).body;
  t.match(view, { state: 'cancelled', error: 'cancelled', etaSeconds: null, bytesPerSecond: 0 });
  const again = await runCli(['image', 'cancel', id, ...memberArgs]);
  t.equal(again.code, 5);
  t.match(again.stderr, /has already cancelled \(HTTP 409\)/);
  const watch = await runCli(['image', 'watch', id, ...memberArgs]);
  t.equal(watch.code, 1, 'watching a cancelled job reports it');
  t.match(watch.stderr, /was cancelled; export slow holds a partial image/);
});
