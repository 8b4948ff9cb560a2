/**
 * Live configuration on a running `blockgate serve`: the management API's config
 * show/diff/apply/rollback and SIGHUP change exports without touching the clients of what
 * did not change. Proven with real clients: one libnbd handle (one TCP connection) stays
 * open across every reload and keeps its data, nbdinfo sees exports come and go, the
 * client of a removed export is disconnected, and refused or invalid changes change nothing.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { memberApi } from '../helpers/api.js';
import { ensureBuilt, listExports, nbdUri, startMember } from '../helpers/blockgate-cli.js';
import { tempDir, toolEnv, waitFor } from '../helpers/clients.js';
import { TestInitiator } from '../helpers/iscsi.js';
import type { FrontEndSession } from '../../gateway/sessions.js';

ensureBuilt();

const MiB = 1024 * 1024;
/** PERSISTENT RESERVE OUT service actions and the reservation type used (SPC-4 6.16.2, 6.15.3.4). */
const PR_OUT_REGISTER = 0x00;
const PR_OUT_RESERVE = 0x01;
const PR_OUT_RELEASE = 0x02;
const PR_TYPE_WRITE_EXCLUSIVE = 0x01;

/**
 * One libnbd connection driven line by line: `w OFFSET HEX` writes, `r OFFSET LENGTH` reads
 * (answering the bytes in hex). The handle is never reconnected: if the server drops the
 * connection, every later command answers `err`.
 */
const HELD_CLIENT = `
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
print("connected", h.get_size(), flush=True)
for line in sys.stdin:
    op, off, arg = line.split()
    try:
        if op == "w":
            h.pwrite(bytes.fromhex(arg), int(off))
            h.flush()
            print("ok", flush=True)
        else:
            print("ok", h.pread(int(arg), int(off)).hex(), flush=True)
    except Exception as e:
        print("err", str(e).replace("\\n", " "), flush=True)
`;

class HeldClient {
  private readonly answers: string[] = [];
  private waiter: ((line: string) => void) | undefined;
  private readonly child;

  constructor(uri: string) {
    this.child = spawn('/usr/bin/python3', ['-c', HELD_CLIENT, uri], { env: toolEnv(), stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(line);
      } else this.answers.push(line);
    });
  }

  next(): Promise<string> {
    const line = this.answers.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.child.once('exit', (code) => reject(new Error(`the NBD client exited (${code})`)));
    });
  }

  async write(offset: number, data: Buffer): Promise<string> {
    this.child.stdin.write(`w ${offset} ${data.toString('hex')}\n`);
    return this.next();
  }

  async read(offset: number, length: number): Promise<string> {
    this.child.stdin.write(`r ${offset} ${length}\n`);
    return this.next();
  }

  close(): void {
    this.child.stdin.end();
    this.child.kill();
  }
}

function config(exports: Record<string, string>, sizes: Record<string, string> = {}): object {
  return {
    member: 'live',
    backends: Object.values(exports).map((d) => ({ name: d, type: 'memory', size: sizes[d] ?? '4MiB' })),
    exports: Object.entries(exports).map(([name, device]) => ({ name, device })),
    nbd: { listen: ['127.0.0.1:0'] },
  };
}

interface ApplyBody {
  applied: boolean;
  dryRun: boolean;
  generation: number;
  changes: string[];
  refused: Array<{ field: string; problem: string }>;
  error?: string;
  problems?: Array<{ field: string; problem: string }>;
}

t.test('exports added and removed live over the API; the client of an unchanged export keeps its connection and data', async (t) => {
  const dir = await tempDir(t, 'member-live-');
  const configPath = join(dir, 'member.json');
  await writeFile(configPath, JSON.stringify(config({ alpha: 'a', beta: 'b' })));
  const member = startMember(t, ['--config', configPath, '--data-dir', join(dir, 'data')]);
  const listen = await member.ready();
  const nbd = listen.nbd![0]!;
  const api = await memberApi(member);
  const names = async () => (await listExports(nbd)).map((e) => e['export-name']).sort();

  const held = new HeldClient(nbdUri(nbd, 'alpha'));
  t.teardown(() => held.close());
  t.equal(await held.next(), `connected ${4 * MiB}`);
  const pattern = Buffer.from('blockgate keeps this connection', 'utf8');
  t.equal(await held.write(65536, pattern), 'ok');
  const beta = new HeldClient(nbdUri(nbd, 'beta'));
  t.teardown(() => beta.close());
  t.equal(await beta.next(), `connected ${4 * MiB}`);
  const sessions = async () => (await api.json<{ sessions: FrontEndSession[] }>('/api/v1/sessions')).body.sessions;
  const before = await waitFor(async () => {
    const s = await sessions();
    return s.filter((x) => x.state === 'serving').length === 2 ? s : undefined;
  }, 'both NBD clients connected');
  const alphaSession = before.find((s) => s.exports[0] === 'alpha')!;

  const shown = await api.json<{ generation: number; current: { source: string }; generations: unknown[] }>('/api/v1/config');
  t.equal(shown.status, 200);
  t.equal(shown.body.generation, 1, 'the config file started the member as generation 1');
  t.equal(shown.body.current.source, `file:${configPath}`);

  // Dry run: what would change, nothing changes.
  const next = config({ alpha: 'a', gamma: 'c' });
  const dry = await api.json<ApplyBody>('/api/v1/config/diff', { method: 'POST', body: { config: next } });
  t.equal(dry.status, 200);
  t.same(dry.body.changes.sort(), ['+ device c', '+ export gamma', '- device b', '- export beta'].sort(), 'the diff lists what would be added and removed');
  t.same(dry.body.refused, []);
  t.equal(dry.body.dryRun, true);
  t.same(await names(), ['alpha', 'beta'], 'a dry run changes nothing');

  const applied = await api.json<ApplyBody>('/api/v1/config/apply', { method: 'POST', body: { config: next } });
  t.equal(applied.status, 200, JSON.stringify(applied.body));
  t.equal(applied.body.applied, true);
  t.equal(applied.body.generation, 2, 'stored as generation 2');
  t.same(await names(), ['alpha', 'gamma'], 'gamma is served, beta is gone');
  t.match(await beta.read(0, 512), /^err /, 'the client of the removed export was disconnected');
  t.equal(await held.read(65536, pattern.length), `ok ${pattern.toString('hex')}`, 'the held client reads its data on the same connection');
  t.equal(await held.write(0, Buffer.from('after the reload')), 'ok', 'and writes');
  const after = await sessions();
  t.same(
    after.map((s) => [s.id, s.since, s.exports]),
    [[alphaSession.id, alphaSession.since, ['alpha']]],
    'the same NBD session (id, since) is the only one left',
  );

  // A device's geometry under an open export cannot change live: refused, nothing changes.
  const grown = await api.json<ApplyBody>('/api/v1/config/apply', { method: 'POST', body: { config: config({ alpha: 'a', gamma: 'c' }, { a: '8MiB' }) } });
  t.equal(grown.status, 409, 'a size change under a connected client is refused');
  t.match(grown.body.problems, [{ field: 'exports[0]', problem: /export alpha .*a\.size "4MiB" → "8MiB".*1 client has it open/ }]);
  t.equal((await listExports(nbd)).find((e) => e['export-name'] === 'alpha')?.['export-size'], 4 * MiB, 'alpha keeps its size');
  const dryGrown = await api.json<ApplyBody>('/api/v1/config/diff', { method: 'POST', body: { config: config({ alpha: 'a', gamma: 'c' }, { a: '8MiB' }) } });
  t.match(dryGrown.body, { changes: ['~ device a', '~ export alpha (its device is rebuilt: clients reconnect)'], refused: [{ field: 'exports[0]' }] }, 'a dry run lists the refusal');

  // An invalid configuration is refused with every problem and is not stored.
  const invalid = await api.json<ApplyBody>('/api/v1/config/apply', {
    method: 'POST',
    body: { config: { ...next, backends: [{ name: 'a', type: 'memory', sise: '4MiB' }, { name: 'c', type: 'memory', size: '4MiB' }] } },
  });
  t.equal(invalid.status, 400);
  t.match(invalid.body.problems, [{ field: 'backends[0].sise', problem: /did you mean size/ }], 'naming the misspelt key');
  const afterRefusals = await api.json<{ generation: number; generations: unknown[] }>('/api/v1/config');
  t.equal(afterRefusals.body.generation, 2, 'neither the refused nor the invalid configuration became a generation');
  t.equal(afterRefusals.body.generations.length, 2);

  // Generations diff and roll back.
  const between = await api.json<{ changes: string[] }>('/api/v1/config/diff', { method: 'POST', body: { from: 1, to: 2 } });
  t.same(between.body.changes.sort(), ['+ device c', '+ export gamma', '- device b', '- export beta'].sort());
  t.equal((await api.json('/api/v1/config/rollback', { method: 'POST', body: { generation: 9 } })).status, 404, 'an unknown generation');
  const back = await api.json<ApplyBody & { generation: number }>('/api/v1/config/rollback', { method: 'POST', body: { generation: 1 } });
  t.equal(back.status, 200, JSON.stringify(back.body));
  t.equal(back.body.generation, 3, 'a rollback is stored as a new generation');
  t.equal((await api.json<{ current: { source: string } }>('/api/v1/config')).body.current.source, 'rollback:1');
  t.same(await names(), ['alpha', 'beta'], 'generation 1 serves again');

  // SIGHUP reads the config file again.
  await writeFile(configPath, JSON.stringify(config({ alpha: 'a', beta: 'b', delta: 'd' })));
  member.child.kill('SIGHUP');
  await member.waitFor((l) => l.msg === 'configuration reloaded');
  t.same(await names(), ['alpha', 'beta', 'delta'], 'SIGHUP: delta added from the file');
  await writeFile(configPath, '{"member": "live", "backends": [');
  member.child.kill('SIGHUP');
  const failed = await member.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('configuration reload failed'));
  t.match(failed.problems, [{ problem: /not valid JSON/ }], 'SIGHUP with a broken file logs why');
  t.same(await names(), ['alpha', 'beta', 'delta'], 'and changes nothing');
  t.equal((await api.json<{ generation: number }>('/api/v1/config')).body.generation, 4);

  t.equal(await held.read(65536, pattern.length), `ok ${pattern.toString('hex')}`, 'the held client lived through every reload');
  t.equal(await held.read(0, 16), `ok ${Buffer.from('after the reload').toString('hex')}`);
  t.same((await sessions()).map((s) => s.id), [alphaSession.id], 'on its first connection');
  held.close();
  t.equal((await member.terminate()).code, 0);
});

t.test('a reload that adds the first iSCSI target holds NBD clients already connected to its reservations', async (t) => {
  const dir = await tempDir(t, 'member-live-pr-');
  const configPath = join(dir, 'member.json');
  const nbdOnly = config({ alpha: 'a' });
  await writeFile(configPath, JSON.stringify(nbdOnly));
  const member = startMember(t, ['--config', configPath, '--data-dir', join(dir, 'data')]);
  const nbd = (await member.ready()).nbd![0]!;
  const api = await memberApi(member);
  const held = new HeldClient(nbdUri(nbd, 'alpha'));
  t.teardown(() => held.close());
  t.equal(await held.next(), `connected ${4 * MiB}`);
  t.equal(await held.write(0, Buffer.from('before')), 'ok');

  const target = 'iqn.2026-11.dev.blockgate:live-pr';
  const withTarget = { ...nbdOnly, iscsi: { targets: [{ name: target, luns: [{ lun: 0, export: 'alpha' }], portalGroups: [{ id: 1, portals: ['127.0.0.1:3260'] }] }] } };
  const applied = await api.json<ApplyBody>('/api/v1/config/apply', { method: 'POST', body: { config: withTarget } });
  t.equal(applied.status, 200, JSON.stringify(applied.body));
  // The member's --iscsi listener (startMember's port 0) carries the new target.
  const status = await api.json<{ frontEnds: { iscsi: string[] } }>('/api/v1/status');
  const port = Number(/^127\.0\.0\.1:(\d+) /.exec(status.body.frontEnds.iscsi[0] ?? '')?.[1]);

  const host = await TestInitiator.connect(port);
  t.teardown(() => host.close());
  await host.login({ targetName: target });
  const prout = (sa: number, key: bigint, sakey: bigint, type = 0) => {
    const list = Buffer.alloc(24);
    list.writeBigUInt64BE(key, 0);
    list.writeBigUInt64BE(sakey, 8);
    return host.scsi(Buffer.from([0x5f, sa, type, 0, 0, 0, 0, 0, 24, 0]), { lun: 0, write: list }).then((r) => r.status);
  };
  // Unit attentions of the new LUN first, then REGISTER and RESERVE Write Exclusive.
  for (let i = 0; i < 4 && (await host.scsi(Buffer.alloc(6), { lun: 0 })).status !== 0; i++);
  t.equal(await prout(PR_OUT_REGISTER, 0n, 0xabn), 0, 'the iSCSI host registers');
  t.equal(await prout(PR_OUT_RESERVE, 0xabn, 0n, PR_TYPE_WRITE_EXCLUSIVE), 0, 'and reserves Write Exclusive');

  t.match(await held.write(0, Buffer.from('stale')), /^err .*(Operation not permitted|EPERM)/, 'the NBD client connected before the reload is refused the write');
  t.equal(await held.read(0, 6), `ok ${Buffer.from('before').toString('hex')}`, 'reads stay allowed (Write Exclusive), and the data is unchanged');
  t.equal(await prout(PR_OUT_RELEASE, 0xabn, 0n, PR_TYPE_WRITE_EXCLUSIVE), 0, 'released');
  t.equal(await held.write(0, Buffer.from('after')), 'ok', 'the NBD client writes again');
  held.close();
  t.equal((await member.terminate()).code, 0);
});
