#!/usr/bin/env node
// `npm run fuzz -- --minutes N [--seed S] [--only nbd-options,…] [--out DIR] [--live]`:
// the coverage-guided harnesses (test/fuzz/guided.test.ts) round-robin for N minutes in all,
// in slices of 30 s; new corpus entries and crashes go to DIR (named at the start and end).
// --live also runs the live-socket fuzzer (test/fuzz/protocols.test.ts) for N minutes per protocol.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const HARNESSES = 5;
const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    seed: { type: 'string' },
    only: { type: 'string' },
    out: { type: 'string' },
    live: { type: 'boolean', default: false },
  },
});
const minutes = Number(values.minutes);
if (!(minutes > 0)) {
  console.error(`--minutes: a positive number, not ${values.minutes}`);
  process.exit(2);
}
const ms = Math.round(minutes * 60_000);
const harnesses = values.only ? values.only.split(',').length : HARNESSES;
const perHarness = Math.max(1000, Math.floor(ms / harnesses));
const out = resolve(values.out ?? join(tmpdir(), `blockgate-fuzz-${new Date().toISOString().replace(/[:.]/g, '-')}`));
mkdirSync(out, { recursive: true });
console.log(`fuzz: new corpus entries and crashes go to ${out}`);
const env = {
  ...process.env,
  BLOCKGATE_GUIDED_MS: String(perHarness),
  BLOCKGATE_GUIDED_SLICE_MS: String(Math.min(perHarness, 30_000)),
  BLOCKGATE_FUZZ_OUT: out,
  ...(values.seed !== undefined && { BLOCKGATE_FUZZ_SEED: values.seed }),
  ...(values.only !== undefined && { BLOCKGATE_FUZZ_ONLY: values.only }),
};
const timeoutS = Math.ceil((ms * 1.5 + 180_000) / 1000);
const tap = (file, extraEnv = {}) =>
  spawnSync('npx', ['tap', '--disable-coverage', `--timeout=${timeoutS}`, file], { stdio: 'inherit', env: { ...env, ...extraEnv } }).status ?? 1;
let status = tap('test/fuzz/guided.test.ts');
if (values.live) status ||= tap('test/fuzz/protocols.test.ts', { BLOCKGATE_FUZZ_MS: String(ms) });
console.log(`fuzz: new corpus entries and crashes are in ${out} (a crash's input is crash-*.bin, its failure crash-*.bin.txt; commit it under test/fuzz/corpus/<harness>/ with the fix)`);
process.exit(status);
