/**
 * Fuzzing the front ends as a hostile client would reach them: mutated NBD and iSCSI byte
 * streams (handshake, options, requests; login, text negotiation, CDBs, task management,
 * data-out), written in random chunks over real sockets to a live `blockgate serve`. After
 * every batch the member must still be running and serve a well-formed client; its memory
 * must stay bounded; and no input may reach an error-level log line (a malformed input is
 * a protocol error answered and logged as such, never an internal failure).
 *
 * Mutation-based, seeded and time-bounded: BLOCKGATE_FUZZ_MS per protocol (default 15 s,
 * `npm run fuzz -- --minutes N --live` for long runs), BLOCKGATE_FUZZ_SEED to replay a run. Inputs
 * in test/fuzz/corpus/<protocol>/ are replayed first and used as seeds: a failing input the
 * run saves goes there to become a regression test.
 */
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, startMember, type MemberProcess } from '../helpers/blockgate-cli.js';
import { chunks, mutate, rng } from '../helpers/fuzz/mutate.js';
import { iscsiSeeds, nbdSeeds } from '../helpers/fuzz/seeds.js';
import { RawNbdClient } from '../helpers/nbd.js';
import { NBD_CMD_READ } from '../helpers/nbd-spec.js';
import { read16, TestInitiator } from '../helpers/iscsi.js';

const MiB = 1024 * 1024;
const RUN_MS = Number(process.env.BLOCKGATE_FUZZ_MS ?? 15_000);
const SEED = Number(process.env.BLOCKGATE_FUZZ_SEED ?? Date.now() % 0x7fffffff);
/** Connections in flight at once: enough to keep the member busy, well under its per-client limit. */
const PARALLEL = 12;
/** A connection that neither closes nor is closed is given up on after this long idle. */
const IDLE_MS = 150;
const TARGET = 'iqn.2026-11.dev.blockgate:fuzz';
const EXPORT = 'fuzz';
const CORPUS = join(import.meta.dirname, 'corpus');
/** What a bug looks like in a log line: a JavaScript failure rather than a protocol refusal. */
const INTERNAL = /TypeError|RangeError|ReferenceError|SyntaxError|AssertionError|Cannot read|is not a function|is not iterable|ERR_OUT_OF_RANGE|ERR_BUFFER_OUT_OF_BOUNDS|ERR_INVALID_ARG/;

t.setTimeout(RUN_MS * 2 + 120_000);

const rss = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

/** Write `input` in chunks; resolve once the member closes the connection or goes quiet. */
function drive(port: number, input: Buffer, random: () => number): Promise<void> {
  return new Promise((resolve) => {
    const socket: Socket = connect({ port, host: '127.0.0.1' });
    let idle: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(idle);
      socket.destroy();
      resolve();
    };
    const quiet = () => {
      clearTimeout(idle);
      idle = setTimeout(done, IDLE_MS);
    };
    socket.on('error', done);
    socket.on('close', done);
    socket.on('data', quiet);
    socket.on('connect', () => {
      for (const c of chunks(input, random)) socket.write(c);
      quiet();
    });
  });
}

function corpus(protocol: string): Buffer[] {
  const dir = join(CORPUS, protocol);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((f) => readFileSync(join(dir, f)));
}

interface Harness {
  readonly protocol: 'nbd' | 'iscsi';
  readonly seeds: Buffer[];
  readonly port: number;
  /** A well-formed client still gets served. */
  alive(): Promise<void>;
}

async function fuzz(t: Test, member: MemberProcess, h: Harness): Promise<void> {
  const random = rng(SEED);
  const regressions = corpus(h.protocol);
  const seeds = [...h.seeds, ...regressions];
  const pid = member.child.pid!;
  const linesBefore = member.lines.length;
  await h.alive();
  const before = rss(pid);
  let peak = before;
  const recent: Buffer[] = [];
  let inputs = 0;
  const deadline = Date.now() + RUN_MS;
  const save = () => {
    const dir = mkdtempSync(join(tmpdir(), `blockgate-fuzz-${h.protocol}-`));
    for (const b of recent) writeFileSync(join(dir, `${createHash('sha1').update(b).digest('hex').slice(0, 16)}.bin`), b);
    return dir;
  };

  // Replay the regression corpus as it is, then mutate.
  const queue = [...regressions];
  while (queue.length > 0 || Date.now() < deadline) {
    const batch = queue.splice(0, PARALLEL);
    while (batch.length < PARALLEL) batch.push(mutate(seeds, random));
    recent.push(...batch);
    if (recent.length > 64) recent.splice(0, recent.length - 64);
    await Promise.all(batch.map((input) => drive(h.port, input, random)));
    inputs += batch.length;
    peak = Math.max(peak, rss(pid));
    if (member.child.exitCode !== null || member.child.signalCode !== null) {
      t.fail(`the member died (${member.child.exitCode ?? member.child.signalCode}); the last inputs are in ${save()}: ${member.stderr.slice(-2000)}`);
      return;
    }
    if (inputs % (PARALLEL * 40) === 0) {
      try {
        await h.alive();
      } catch (err) {
        t.fail(`a well-formed client is no longer served (${String(err)}); the last inputs are in ${save()}`);
        return;
      }
    }
  }
  await h.alive();
  t.pass(`${inputs} ${h.protocol} inputs (seed ${SEED}), and a well-formed client is still served`);
  const logged = member.lines.slice(linesBefore);
  t.same(logged.filter((l) => Number(l.level) >= 50), [], 'no input led to an error-level log line');
  // Whatever a refusal says must be the protocol's words, never a JavaScript failure's.
  t.same(logged.filter((l) => INTERNAL.test(JSON.stringify(l))), [], 'no log line carries an internal error (TypeError, out-of-range reads, …)');
  const grew = peak - before;
  t.comment(`member RSS ${Math.round(before / MiB)} MiB before, peak ${Math.round(peak / MiB)} MiB`);
  t.ok(grew < 192 * MiB, `member memory grew by ${Math.round(grew / MiB)} MiB (bound 192 MiB; the device is 64 MiB of RAM)`);
  const reasons = new Set(member.lines.map((l) => l.reason ?? l.why).filter((r) => typeof r === 'string').map((r) => (r as string).replace(/\d+/g, 'N')));
  t.comment(`${reasons.size} distinct refusal reasons logged (a rough measure of how deep the inputs went)`);
}

t.test('NBD and iSCSI front ends under mutated client streams', async (t) => {
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'security-fuzz-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'blockgate.json');
  writeFileSync(
    config,
    JSON.stringify({
      backends: [{ name: 'ram', type: 'memory', size: '64MiB' }],
      exports: [{ name: EXPORT, device: 'ram' }],
      nbd: { listen: ['127.0.0.1:0'] },
      iscsi: { targets: [{ name: TARGET, luns: [{ lun: 0, export: EXPORT }], portalGroups: [{ id: 1, portals: ['127.0.0.1:0'] }] }] },
    }),
  );
  mkdirSync(join(dir, 'data'));
  const member = startMember(t, ['--config', config, '--data-dir', join(dir, 'data')]);
  const listen = await member.ready();
  const nbdPort = Number(/:(\d+)$/.exec(listen.nbd![0]!)![1]);
  const iscsiPort = Number(/:(\d+) /.exec(listen.iscsi![0]!)![1]);
  t.comment(`seed ${SEED}, ${RUN_MS} ms per protocol`);

  await t.test('NBD: handshake, options, transmission requests', (t) =>
    fuzz(t, member, {
      protocol: 'nbd',
      seeds: nbdSeeds(EXPORT),
      port: nbdPort,
      alive: async () => {
        const c = await RawNbdClient.open({ port: nbdPort });
        try {
          await c.go(EXPORT);
          c.request(NBD_CMD_READ, { offset: 0, length: 4096 });
          const r = await c.readSimple(4096);
          if (r.error !== 0) throw new Error(`read failed with ${r.error}`);
        } finally {
          c.destroy();
        }
      },
    }),
  );

  await t.test('iSCSI: login, text negotiation, SCSI commands, task management, data-out', (t) =>
    fuzz(t, member, {
      protocol: 'iscsi',
      seeds: iscsiSeeds(TARGET),
      port: iscsiPort,
      alive: async () => {
        const ini = await TestInitiator.connect(iscsiPort);
        try {
          await ini.login({ targetName: TARGET });
          const r = await ini.scsi(read16(0, 8), { read: 4096 });
          if (r.status !== 0) throw new Error(`READ(16) status ${r.status}`);
        } finally {
          ini.close();
        }
      },
    }),
  );
});
