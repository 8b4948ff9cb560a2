/**
 * Coverage-guided fuzzing of the protocol parsers, in process (libFuzzer style, V8's block
 * coverage as the feedback; test/helpers/fuzz/{coverage,guided,harnesses}.ts): the NBD
 * handshake and options, the NBD request reader, the iSCSI PDU reader, iSCSI login with its
 * text and negotiation, and the SCSI target's CDB decoding and dispatch on a memory device.
 *
 * Per harness: every input of test/fuzz/corpus/<harness>/ is replayed as a regression test
 * (a crash found once is committed there); then a short guided run must find no failure,
 * and must show the guidance works: the corpus grows beyond its start and more blocks are
 * covered at the end than after the start corpus ran (a broken feedback loop fails here).
 *
 * BLOCKGATE_GUIDED_MS per harness (default 10 s; `npm run fuzz -- --minutes N` sets it and
 * BLOCKGATE_GUIDED_SLICE_MS for round-robin), BLOCKGATE_FUZZ_SEED to replay a run,
 * BLOCKGATE_FUZZ_OUT where new corpus entries and crashes are written (default a temp dir),
 * BLOCKGATE_FUZZ_ONLY=name,… for some harnesses, BLOCKGATE_FUZZ_UNGUIDED=1 to mutate the start corpus only (pure random, for comparison).
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt } from '../helpers/blockgate-cli.js';
import { V8Coverage } from '../helpers/fuzz/coverage.js';
import { guided, runOne, type GuidedStats } from '../helpers/fuzz/guided.js';
import { DIST_URL, harnesses } from '../helpers/fuzz/harnesses.js';
import { rng } from '../helpers/fuzz/mutate.js';

const MS = Number(process.env.BLOCKGATE_GUIDED_MS ?? 10_000);
const SLICE_MS = Number(process.env.BLOCKGATE_GUIDED_SLICE_MS ?? MS);
const SEED = Number(process.env.BLOCKGATE_FUZZ_SEED ?? Date.now() % 0x7fffffff);
const GUIDED = process.env.BLOCKGATE_FUZZ_UNGUIDED !== '1';
const OUT = process.env.BLOCKGATE_FUZZ_OUT ?? mkdtempSync(join(tmpdir(), 'blockgate-fuzz-guided-'));
const CORPUS = join(import.meta.dirname, 'corpus');

t.setTimeout(MS * 5 + 120_000);

function repoCorpus(harness: string): Array<{ file: string; input: Buffer }> {
  const dir = join(CORPUS, harness);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((file) => ({ file, input: readFileSync(join(dir, file)) }));
}

ensureBuilt();
// Coverage starts before the harnesses load dist/, so every block of it is counted.
const cov = new V8Coverage((url) => url.startsWith(DIST_URL));
const ONLY = process.env.BLOCKGATE_FUZZ_ONLY?.split(',');
const all = (await harnesses()).filter((h) => !ONLY || ONLY.includes(h.name));
t.comment(`seed ${SEED}, ${MS} ms per harness${SLICE_MS < MS ? ` in slices of ${SLICE_MS} ms` : ''}, ${GUIDED ? 'coverage-guided' : 'UNGUIDED (random mutation of the start corpus)'}; output in ${OUT}`);

for (const h of all) {
  t.test(`${h.name}: the repo corpus replays without a failure`, async (t) => {
    const entries = repoCorpus(h.name);
    t.ok(entries.length > 0, `test/fuzz/corpus/${h.name}/ holds a seed corpus`);
    for (const { file, input } of entries) t.equal(await runOne(h, input), null, file);
  });
}

t.test(`${GUIDED ? 'coverage-guided' : 'unguided'} runs, round-robin`, async (t) => {
  const random = rng(SEED);
  const corpora = new Map(
    all.map((h) => {
      const seen = new Set<string>();
      const start = [...repoCorpus(h.name).map((e) => e.input), ...h.seeds].filter((b) => {
        const k = createHash('sha1').update(b).digest('hex');
        return !seen.has(k) && seen.add(k);
      });
      return [h.name, start];
    }),
  );
  const totals = new Map<string, GuidedStats>();

  // Round-robin: each harness gets a slice in turn until each has had MS.
  for (let spent = 0; spent < MS; spent += SLICE_MS) {
    for (const h of all) {
        const s = await guided(h, cov, corpora.get(h.name)!, { ms: Math.min(SLICE_MS, MS - spent), random, guided: GUIDED, out: OUT, replay: spent === 0 });
      const total = totals.get(h.name);
      if (!total) totals.set(h.name, s);
      else {
        total.execs += s.execs;
        total.ms += s.ms;
        total.corpus = s.corpus;
        total.blocks = s.blocks;
        total.crashes.push(...s.crashes);
      }
    }
    if ([...totals.values()].some((s) => s.crashes.length > 0)) break;
  }

  for (const h of all) {
    t.test(`${h.name}: ${GUIDED ? 'coverage-guided' : 'unguided'} run`, async (t) => {
      const s = totals.get(h.name)!;
      t.comment(`${s.execs} execs in ${(s.ms / 1000).toFixed(1)} s (${Math.round(s.execs / (s.ms / 1000))} execs/s); corpus ${s.initial} → ${s.corpus}; dist/ blocks covered ${s.blocksInitial} → ${s.blocks}`);
      t.same(
        s.crashes.map((c) => `${c.file ?? '(not saved)'}: ${c.error.split('\n').slice(0, 4).join(' | ')}`),
        [],
        'no input failed (a crash is saved; commit it to test/fuzz/corpus/<harness>/ with the fix)',
      );
      if (!GUIDED) return;
      t.ok(s.corpus > s.initial, `coverage feedback kept new inputs (corpus ${s.initial} → ${s.corpus})`);
      t.ok(s.blocks > s.blocksInitial, `the run reached blocks the start corpus did not (${s.blocksInitial} → ${s.blocks})`);
    });
  }
  cov.close();
  // A temporary output directory is kept only when it holds a crash to look at.
  if (process.env.BLOCKGATE_FUZZ_OUT === undefined && ![...totals.values()].some((s) => s.crashes.length > 0)) rmSync(OUT, { recursive: true, force: true });
});
