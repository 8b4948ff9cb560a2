/**
 * Front-end limits from the configuration file, and the clients they turn away as a
 * Prometheus counter: a member configured with a short NBD handshake timeout and one
 * connection per client address, and an iSCSI login timeout.
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, runCli, startMember } from '../helpers/blockgate-cli.js';
import { parseExposition, value } from '../helpers/prometheus.js';

ensureBuilt();
const dir = mkdtempSync(join(tmpdir(), 'security-refusals-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const closed = (host: string, port: number, localAddress?: string) =>
  new Promise<number>((resolve) => {
    const started = Date.now();
    const s = connect({ host, port, localAddress });
    s.on('error', () => undefined);
    s.on('close', () => resolve(Date.now() - started));
    s.resume();
  });

t.test('limits and timeouts come from the config; refusals are counted in /metrics', async (t) => {
  const config = join(dir, 'limits.yaml');
  writeFileSync(
    config,
    [
      'backends: [{name: d, type: memory, size: 1MiB}]',
      'exports: [{name: d, device: d}]',
      'nbd: {listen: ["127.0.0.1:0"], handshakeTimeoutMs: 300, maxConnectionsPerClient: 1}',
      'iscsi:',
      '  loginTimeoutMs: 300',
      '  targets: [{name: "iqn.2026-11.dev.blockgate:limits", luns: [{lun: 0, export: d}]}]',
      '',
    ].join('\n'),
  );
  const member = startMember(t, ['--config', config, '--data-dir', join(dir, 'data')]);
  const listen = await member.ready();
  const [nbdHost, nbdPort] = listen.nbd![0]!.split(':') as [string, string];
  const iscsiPort = Number(/:(\d+) /.exec(listen.iscsi![0]!)![1]);

  const first = closed(nbdHost, Number(nbdPort));
  await new Promise((r) => setTimeout(r, 50));
  const second = await closed(nbdHost, Number(nbdPort));
  t.ok(second < 250, `the second connection from 127.0.0.1 is closed at once (${second} ms)`);
  const firstAfter = await first;
  t.ok(firstAfter >= 250 && firstAfter < 5000, `the first, silent, is dropped by the handshake timeout (${firstAfter} ms)`);
  const loginAfter = await closed('127.0.0.1', iscsiPort);
  t.ok(loginAfter >= 250 && loginAfter < 5000, `an iSCSI connection that never logs in is dropped (${loginAfter} ms)`);

  const res = await fetch(`http://${listen.api![0]}/metrics`);
  const m = parseExposition(await res.text());
  t.equal(m.types.get('blockgate_connections_refused_total'), 'counter');
  t.equal(value(m, 'blockgate_connections_refused_total', { protocol: 'nbd', reason: 'client-limit' }), 1);
  t.equal(value(m, 'blockgate_connections_refused_total', { protocol: 'nbd', reason: 'timeout' }), 1);
  t.equal(value(m, 'blockgate_connections_refused_total', { protocol: 'iscsi', reason: 'timeout' }), 1);
  t.ok(member.lines.some((l) => l.msg === 'client refused' && l.reason === 'client-limit'), 'and logged');
});

t.test('check-config names a bad limit', async (t) => {
  const config = join(dir, 'bad.yaml');
  writeFileSync(config, 'backends: [{name: d, type: memory, size: 1MiB}]\nexports: [{name: d, device: d}]\nnbd: {maxConnections: 0}\n');
  const r = await runCli(['check-config', config]);
  t.equal(r.code, 2);
  t.match(r.stderr, /nbd\.maxConnections: must be a whole number from 1 to 1000000/);
  writeFileSync(config, 'backends: [{name: d, type: memory, size: 1MiB}]\nexports: [{name: d, device: d}]\niscsi: {queueDepth: 0, targets: []}\n');
  const r2 = await runCli(['check-config', config]);
  t.equal(r2.code, 2);
  t.match(r2.stderr, /iscsi\.queueDepth/);
});
