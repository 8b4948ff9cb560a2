/**
 * The member commands (status, exports, devices, sessions, paths, action, resync watch,
 * token rotate) run as the real `blockgate` binary against a real member: tables for people,
 * JSON for scripts, the documented exit statuses, several --member options with failover,
 * and the token found in the local member's data directory.
 */
import t from 'tap';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { CLI, ensureBuilt, nbdUri, runCli, startCli, type CliResult } from '../helpers/blockgate-cli.js';
import { nbdsh, startBackground, waitFor } from '../helpers/clients.js';
import { startIdleClients } from '../helpers/idle-clients.js';
import { startSetsMember } from '../helpers/sets-member.js';

ensureBuilt();
// About two minutes alone on two cores; a loaded machine (the whole suite, other work) can double or triple that.
t.setTimeout(600_000);

const INITIATOR = 'iqn.2026-11.dev.blockgate:ops-cli-initiator';
/** Connection refused: a member that is down. */
const DEAD = 'http://127.0.0.1:1';

t.test('member commands against a running member', async (t) => {
  const { dir, dataDir, member, listen, paths, target: TARGET } = await startSetsMember(t, { name: 'cli', sizeMiB: 32, remoteReadOnly: true });
  const api = `http://${listen.api![0]}`;
  // The local member's token is found in its data directory; the working directory has none.
  const env = { BLOCKGATE_DATA_DIR: dataDir };
  const cli = (...args: string[]): Promise<CliResult> => runCli([...args, '--member', api], { cwd: dir, env });
  const json = async <T>(...args: string[]): Promise<T> => {
    const r = await cli(...args, '--json');
    t.equal(r.code, 0, `${args.join(' ')} --json: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };

  await t.test('status, exports, devices', async (t) => {
    const status = await cli('status');
    t.equal(status.code, 0, status.stderr);
    t.match(status.stdout, new RegExp(`^member: +cli \\(answered by ${api}\\)$`, 'm'));
    t.match(status.stdout, /^health: +optimal$/m);
    t.match(status.stdout, /^devices: +6, exports: 2, failover sets: 2$/m);
    t.match(status.stdout, new RegExp(`^nbd: +${listen.nbd![0]}$`, 'm'));
    const s = await json<{ answeredBy: string; health: string; status: { member: string } }>('status');
    t.same([s.answeredBy, s.health, s.status.member], [api, 'optimal', 'cli']);
    t.equal((await cli('status', '--check')).code, 0, 'status --check: 0 while optimal');

    const exports = await cli('exports');
    t.equal(exports.code, 0);
    t.match(exports.stdout, /^EXPORT +DEVICE +SIZE +STATE +MODE +ISCSI$/m);
    t.match(exports.stdout, new RegExp(`^vol +m0 +32\\.0 MiB +optimal +rw +${TARGET} LUN 0$`, 'm'), 'size in binary units, the LUN map');
    t.match(exports.stdout, new RegExp(`^remote +mp +32\\.0 MiB +optimal +ro +${TARGET} LUN 1$`, 'm'));
    const e = await json<Array<{ name: string; size: number; state: string; iscsi: Array<{ lun: number }> }>>('exports');
    t.same(e.map((x) => [x.name, x.size, x.state, x.iscsi[0]!.lun]), [['vol', 32 * 1024 * 1024, 'optimal', 0], ['remote', 32 * 1024 * 1024, 'optimal', 1]]);

    const devices = await cli('devices');
    t.match(devices.stdout, /^DEVICE +SIZE +STATE +SET +IN FLIGHT$/m);
    t.match(devices.stdout, /^m0 +32\.0 MiB +optimal +mirror \(2 members\) +0$/m);
    t.match(devices.stdout, /^r1 +32\.0 MiB +optimal +- +0$/m);
  });

  await t.test('sessions: NBD clients and iSCSI sessions', async (t) => {
    t.match((await cli('sessions')).stdout, /^no clients connected$/m);
    const { nbd, iscsi, portal } = startIdleClients(t, listen, { exportName: 'vol', target: TARGET, lun: 1, initiator: INITIATOR });
    const both = await waitFor(async () => {
      const list = await json<Array<{ protocol: string; state: string; kind: string }>>('sessions');
      return list.some((s) => s.protocol === 'nbd' && s.state === 'serving') && list.some((s) => s.protocol === 'iscsi' && s.kind === 'normal') ? list : undefined;
    }, 'an NBD client and an iSCSI session', 30_000);
    t.equal(both.length, 2);
    const text = (await cli('sessions')).stdout;
    t.match(text, /^PROTOCOL +INITIATOR\/CLIENT +PORTAL +TARGET +EXPORTS +STATE +SINCE +FOR$/m);
    t.match(text, new RegExp(`^nbd +127\\.0\\.0\\.1:\\d+ +${listen.nbd![0]} +- +vol +serving +\\S+ +\\d+s$`, 'm'));
    t.match(text, new RegExp(`^iscsi +${INITIATOR} \\[127\\.0\\.0\\.1:\\d+\\] +${portal} +${TARGET} +vol\\(LUN 0\\), remote\\(LUN 1\\) +serving`, 'm'));
    await nbd.stop();
    await iscsi.stop();
  });

  await t.test('action: list, run, refusals; status --check; resync watch', async (t) => {
    const list = await cli('action', 'm0');
    t.equal(list.code, 0);
    t.match(list.stdout, /^actions of mirror m0 \(optimal\):$/m);
    t.match(list.stdout, /^ {2}offline REPLICA +take a replica/m);
    t.match(list.stdout, /^ {2}setResyncRate RATEMIBPS /m);

    const offline = await cli('action', 'm0', 'offline', 'r1');
    t.equal(offline.code, 0, offline.stderr);
    t.match(offline.stdout, new RegExp(`^m0: offline r1 done; m0 is degraded \\(${api}\\)$`, 'm'));
    const check = await cli('status', '--check');
    t.equal(check.code, 6, 'status --check: 6 while an export is degraded');
    t.match(check.stdout, /^health: +degraded \(m0 degraded\)$/m);
    t.match((await cli('devices')).stdout, /^m0 +32\.0 MiB +degraded /m, 'devices agrees');
    t.match((await cli('exports')).stdout, /^vol +m0 +32\.0 MiB +degraded /m, 'exports agrees');

    // Writes while r1 is out make it dirty: 32 MiB to resync at 4 MiB/s, long enough to watch.
    await nbdsh(nbdUri(listen.nbd![0]!, 'vol'), "for i in range(32):\n    h.pwrite(b'\\x3c' * (1024 * 1024), i * 1024 * 1024)\nh.flush()");
    const again = await cli('action', 'm0', 'offline', 'r1');
    t.equal(again.code, 5, 'refused in the current state: exit 5');
    t.match(again.stderr, /\(HTTP 409\)$/m);
    t.equal((await cli('action', 'nope', 'failback')).code, 1, 'unknown device: exit 1');
    t.equal((await cli('action', 'm0', 'offline')).code, 2, 'a missing argument is a usage error');
    t.equal((await cli('action', 'm0', 'setResyncRate', 'fast')).code, 2, 'a number argument must be a number');
    const readOnly = await runCli(['action', 'm0', 'reintegrate', 'r1', '--member', api, '--token-file', join(dataDir, 'api', 'read.token')], { cwd: dir });
    t.equal(readOnly.code, 4, 'the read-only token cannot act: exit 4');

    // A slow resync (0.5 MiB/s), so that both watchers surely see it running on a loaded machine;
    // once each has drawn its first progress, the rate is lifted and the resync ends.
    t.equal((await cli('action', 'm0', 'setResyncRate', '0.5')).code, 0, 'setResyncRate');
    const reintegrate = await cli('action', 'm0', 'reintegrate', 'r1');
    t.equal(reintegrate.code, 0, reintegrate.stderr);
    // Two watchers of the same resync: one on a terminal (script(1) gives it a pty), one not.
    const plain = startCli(t, ['resync', 'watch', 'm0', '--member', api], { cwd: dir, env });
    const terminal = startBackground('script', ['-qec', `${process.execPath} ${CLI} resync watch m0 --member ${api}`, '/dev/null'], { env });
    t.teardown(() => terminal.stop());
    const BAR = /\x1b\[1Gresync m0 -> r1 \[[=-]{30}\] \d+% \| [\d.]+ \w?i?B of 32\.0 MiB \| [\d.]+ \w?i?B\/s \| ETA (\d+m)?\d+s/;
    const LINE = /^resync m0 -> r1: \d+% [\d.]+ \w?i?B of [\d.]+ MiB, [\d.]+ \w?i?B\/s, ETA \S+$/m;
    await waitFor(async () => BAR.test(terminal.output()) && LINE.test(plain.stderr()), 'both watchers drew the running resync with its rate and ETA', 90_000);
    t.equal((await cli('action', 'm0', 'setResyncRate', '0')).code, 0, 'the rate lifted');
    const watch = await plain.result;
    t.equal(watch.code, 0, watch.stderr);
    t.equal((await terminal.exited).code, 0, terminal.output());
    const tty = { stdout: terminal.output() };
    t.match(tty.stdout, BAR, 'on a terminal: a progress bar redrawn in place, with bytes, rate and ETA');
    t.match(tty.stdout, /\[={30}\] 100% /, 'full at the end');
    t.match(watch.stderr, LINE, 'plain progress lines (not a terminal): bytes, rate, ETA');
    t.match(watch.stderr, /^resync m0 -> r1: 100% /m, 'and the last one at 100%');
    t.match(watch.stdout, /^m0: resync ended, [\d.]+ MiB resynced in all; optimal, every replica in sync$/m);
    t.match((await cli('resync', 'watch', 'm0')).stdout, /^m0: no resync running; optimal/m, 'nothing to watch: says so, exit 0');
    t.equal((await cli('resync', 'watch', 'mp')).code, 2, 'a multipath device does not resync');
    t.equal((await cli('status', '--check')).code, 0, 'optimal again');
  });

  await t.test('paths: address, state and last error', async (t) => {
    const text = (await cli('paths')).stdout;
    t.match(text, /^SET +PATH +ADDRESS +ROLE +STATE +FAILURES +LAST ERROR$/m);
    t.match(text, new RegExp(`^mp +p0 +${paths[0]!.address} +primary +active +0 +-$`, 'm'));
    await paths[1]!.kill();
    const failed = await waitFor(async () => (await json<Array<{ path: string; state: string; lastError?: string }>>('paths')).find((p) => p.path === 'p1' && p.state === 'failed'), 'p1 failed', 30_000);
    t.ok(failed.lastError, `the last error: ${failed.lastError}`);
    t.match((await cli('paths')).stdout, new RegExp(`^mp +p1 +${paths[1]!.address} +\\w+ +failed +\\d+ +\\S.*$`, 'm'));
  });

  await t.test('several members: reads and changes move past a member that is down', async (t) => {
    const status = await runCli(['status', '--member', DEAD, '--member', api], { cwd: dir, env });
    t.equal(status.code, 0, status.stderr);
    t.match(status.stdout, new RegExp(`answered by ${api}`));
    const act = await runCli(['action', 'mp', 'failback', '--member', DEAD, '--member', api], { cwd: dir, env });
    t.not(act.code, 3, 'the change reached the live member');
    const down = await runCli(['status', '--member', DEAD], { cwd: dir, env });
    t.equal(down.code, 3, 'no member reachable: exit 3');
    t.match(down.stderr, /cannot reach the member at http:\/\/127\.0\.0\.1:1: ECONNREFUSED/);
    // The local member's token never goes to a member elsewhere: a stand-in on this host's
    // own non-loopback address records what it is sent.
    const address = Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
    t.ok(address, 'this host has a non-loopback IPv4 address');
    const seen: Array<string | undefined> = [];
    const standIn = createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"no"}');
    });
    await new Promise<void>((resolve) => standIn.listen(0, address, resolve));
    t.teardown(() => standIn.close());
    const elsewhere = await runCli(['status', '--member', `http://${address}:${(standIn.address() as AddressInfo).port}`], { cwd: dir, env });
    t.equal(elsewhere.code, 4);
    t.same(seen, [undefined], 'a member not on this host got no token');
    t.equal((await runCli(['status', 'extra', '--member', api], { cwd: dir, env })).code, 2, 'a bad command line: exit 2');
    const empty = join(dir, 'empty');
    await mkdir(empty);
    const noToken = await runCli(['status', '--member', api], { cwd: empty });
    t.equal(noToken.code, 4, 'no token found anywhere: exit 4');
  });

  await t.test('token rotate', async (t) => {
    const adminFile = join(dataDir, 'api', 'admin.token');
    const old = (await readFile(adminFile, 'utf8')).trim();
    const r = await cli('token', 'rotate');
    t.equal(r.code, 0, r.stderr);
    const token = r.stdout.trim();
    t.match(token, /^bga_[A-Za-z0-9_-]{43}$/, 'the new admin token on stdout');
    t.match(r.stderr, new RegExp(`${api}: admin token replaced; stored in ${adminFile}`));
    t.equal((await readFile(adminFile, 'utf8')).trim(), token, 'the member stored it');
    t.equal((await runCli(['status', '--member', api, '--token', old], { cwd: dir })).code, 4, 'the old token is refused');
    t.equal((await runCli(['status', '--member', api, '--token', token], { cwd: dir })).code, 0, 'the new one works');
    const ro = await cli('token', 'rotate', '--read-only', '--json');
    t.equal(ro.code, 0, ro.stderr);
    const answer = JSON.parse(ro.stdout) as { role: string; token: string; members: Array<{ member: string; path: string }> };
    t.equal(answer.role, 'read');
    t.match(answer.token, /^bgr_/);
    t.same(answer.members, [{ member: api, path: join(dataDir, 'api', 'read.token') }]);
    t.notOk(JSON.stringify(member.lines).includes(token), 'the member did not log the new token');
  });

  t.equal((await member.terminate()).code, 0);
});
