/**
 * The coverage-guided loop (libFuzzer's, in-process): run the corpus, then mutate inputs
 * picked from it; an input that reaches a block or hit-count bucket not seen before joins
 * the corpus and is mutated further. Stops a harness at its first failure: an exception
 * that is not a refusal, an unhandled rejection, an input that never settles, or memory
 * that keeps growing.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V8Coverage } from './coverage.js';
import type { Harness } from './harnesses.js';
import { mutate } from './mutate.js';

export interface Crash {
  readonly input: Buffer;
  readonly error: string;
  /** Where it was written, when the run has an output directory. */
  readonly file?: string;
}

export interface GuidedStats {
  readonly harness: string;
  execs: number;
  ms: number;
  /** Corpus entries before the run (seeds and the repo corpus) and at its end. */
  readonly initial: number;
  corpus: number;
  /** Blocks of dist/ reached once the initial corpus ran, and at the end. */
  blocksInitial: number;
  blocks: number;
  crashes: Crash[];
}

export interface GuidedOptions {
  readonly ms: number;
  readonly random: () => number;
  /** Off: the same mutations of the initial corpus only (pure random mutation, for comparison). */
  readonly guided: boolean;
  /** New corpus entries go to <out>/<harness>/corpus/, failures to <out>/<harness>/crash-*. */
  readonly out?: string;
  /** Run the corpus as it is before mutating (default); a later round-robin slice skips it. */
  readonly replay?: boolean;
}

/** An input that has not settled after this long is a hang. */
const HANG_MS = 5000;
/** Heap growth over the run that counts as unbounded memory (inputs are at most 256 KiB). */
const MEMORY_BOUND = 512 * 1024 * 1024;

const name = (b: Buffer) => createHash('sha1').update(b).digest('hex').slice(0, 16);

/** One input; the failure's description, or null. */
export async function runOne(h: Harness, input: Buffer): Promise<string | null> {
  let rejected: unknown;
  let has = false;
  const onRejection = (reason: unknown) => {
    has = true;
    rejected = reason;
  };
  process.on('unhandledRejection', onRejection);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      h.run(input),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`input did not settle in ${HANG_MS} ms`)), HANG_MS))),
    ]);
    // A rejection nobody handles is reported after the microtasks run out: give it that turn.
    await new Promise(setImmediate);
    return has ? `unhandled rejection: ${describe(rejected)}` : null;
  } catch (err) {
    return describe(err);
  } finally {
    clearTimeout(timer);
    process.off('unhandledRejection', onRejection);
  }
}

const describe = (err: unknown) => (err instanceof Error ? (err.stack ?? String(err)) : String(err));

/** Fuzz `h` for o.ms; interesting inputs are pushed on `corpus` (kept by the caller across round-robin slices). */
export async function guided(h: Harness, cov: V8Coverage, corpus: Buffer[], o: GuidedOptions): Promise<GuidedStats> {
  const initial = o.replay === false ? [] : [...corpus];
  const stats: GuidedStats = { harness: h.name, execs: 0, ms: 0, initial: corpus.length, corpus: corpus.length, blocksInitial: 0, blocks: 0, crashes: [] };
  const dir = o.out && join(o.out, h.name);
  const crash = (input: Buffer, error: string) => {
    let file: string | undefined;
    if (dir) {
      mkdirSync(dir, { recursive: true });
      file = join(dir, `crash-${name(input)}.bin`);
      writeFileSync(file, input);
      writeFileSync(`${file}.txt`, `${error}\n`);
    }
    stats.crashes.push({ input, error, ...(file && { file }) });
  };
  const started = performance.now();
  cov.use(h.name);
  for (const input of initial) {
    const failure = await runOne(h, input);
    cov.collect();
    stats.execs++;
    if (failure) crash(input, failure);
  }
  stats.blocksInitial = cov.blockCount;
  const heap0 = process.memoryUsage().heapUsed;
  const deadline = started + o.ms;
  while (stats.crashes.length === 0 && performance.now() < deadline) {
    const input = mutate(corpus, o.random, o.guided);
    const failure = await runOne(h, input);
    const fresh = cov.collect();
    stats.execs++;
    if (failure) crash(input, failure);
    else if (fresh > 0 && o.guided) {
      corpus.push(input);
      if (dir) {
        mkdirSync(join(dir, 'corpus'), { recursive: true });
        writeFileSync(join(dir, 'corpus', `${name(input)}.bin`), input);
      }
    }
    if ((stats.execs & 255) === 0 && process.memoryUsage().heapUsed - heap0 > MEMORY_BOUND) {
      global.gc?.();
      const grown = process.memoryUsage().heapUsed - heap0;
      if (grown > MEMORY_BOUND) crash(input, `heap grew by ${Math.round(grown / 1048576)} MiB during the run (bound ${MEMORY_BOUND / 1048576} MiB)`);
    }
  }
  stats.ms = performance.now() - started;
  stats.corpus = corpus.length;
  stats.blocks = cov.blockCount;
  return stats;
}
