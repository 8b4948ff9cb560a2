#!/usr/bin/env node
// `npm run fuzz -- --minutes N [--seed S]`: the protocol fuzzer (test/fuzz/protocols.test.ts)
// for N minutes per protocol instead of the short run `npm test` makes.
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '5' }, seed: { type: 'string' } } });
const minutes = Number(values.minutes);
if (!(minutes > 0)) {
  console.error(`--minutes: a positive number, not ${values.minutes}`);
  process.exit(2);
}
const ms = Math.round(minutes * 60_000);
const env = { ...process.env, BLOCKGATE_FUZZ_MS: String(ms), ...(values.seed !== undefined && { BLOCKGATE_FUZZ_SEED: values.seed }) };
// tap's own timeout must cover both protocols' runs and the member's start.
const timeoutS = Math.ceil((2 * ms + 180_000) / 1000);
const run = spawnSync('npx', ['tap', `--timeout=${timeoutS}`, 'test/fuzz/protocols.test.ts'], { stdio: 'inherit', env });
process.exit(run.status ?? 1);
