/**
 * Coverage feedback for the guided fuzzer from V8 itself: block coverage with call counts
 * (the inspector's Profiler.startPreciseCoverage { callCount, detailed }), read after every
 * input with Profiler.takePreciseCoverage, which also resets the counters. A feature is a
 * block of a project file (script, byte range) with its hit count put in libFuzzer's buckets
 * (1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+): an input that shows a feature never seen
 * before is interesting and is kept in the corpus.
 */
import { Session } from 'node:inspector';

interface BlockRange {
  startOffset: number;
  endOffset: number;
  count: number;
}
interface ScriptCoverage {
  scriptId: string;
  url: string;
  functions: Array<{ functionName: string; ranges: BlockRange[] }>;
}

/** libFuzzer's hit-count classes: loops that run a new number of times count as new behaviour. */
export function bucket(count: number): number {
  if (count <= 3) return count;
  if (count < 8) return 4;
  if (count < 16) return 5;
  if (count < 32) return 6;
  if (count < 128) return 7;
  return 8;
}

/** A block's count this time: its own if reported, else that of the innermost reported range around it. */
function countOf(ranges: readonly BlockRange[], block: BlockRange): number {
  let count = 0;
  let width = Infinity;
  for (const r of ranges) {
    if (r.startOffset <= block.startOffset && r.endOffset >= block.endOffset && r.endOffset - r.startOffset < width) {
      width = r.endOffset - r.startOffset;
      count = r.count;
    }
  }
  return count;
}

export class V8Coverage {
  private readonly session = new Session();
  /** Script id → index of its (url) in `scripts`, for the files we measure; null: not ours. */
  private readonly ours = new Map<string, number | null>();
  private readonly scripts: string[] = [];
  /** Features seen (script index, start, end, bucket packed in a string), per harness. */
  private features = new Set<string>();
  /** Blocks (without the bucket) reached at least once, per harness. */
  private blocks = new Set<string>();
  /** Nested blocks of each function ever reported (script index:function start → range). */
  private readonly known = new Map<string, Map<string, BlockRange>>();
  private readonly scopes = new Map<string, { features: Set<string>; blocks: Set<string> }>();

  /** `measured(url)` says which scripts count (the project's built files). */
  constructor(private readonly measured: (url: string) => boolean) {
    this.session.connect();
    this.post('Profiler.enable');
    this.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  }

  /** Count what follows for `harness` (each harness has its own features; round-robin runs come back to them). */
  use(harness: string): void {
    let scope = this.scopes.get(harness);
    if (!scope) this.scopes.set(harness, (scope = { features: new Set(), blocks: new Set() }));
    this.features = scope.features;
    this.blocks = scope.blocks;
    this.reset();
  }

  /** Blocks of the measured files reached so far. */
  get blockCount(): number {
    return this.blocks.size;
  }

  get featureCount(): number {
    return this.features.size;
  }

  /** Counters since the last call: forget what ran before an input. */
  reset(): void {
    this.post('Profiler.takePreciseCoverage');
  }

  /**
   * Fold the counters since the last call into what has been seen (or only look, with
   * `record` false); the number of features the input showed for the first time.
   */
  collect(record = true): number {
    const { result } = this.post('Profiler.takePreciseCoverage') as { result: ScriptCoverage[] };
    let fresh = 0;
    for (const script of result) {
      let index = this.ours.get(script.scriptId);
      if (index === undefined) {
        index = this.measured(script.url) ? this.scripts.push(script.url) - 1 : null;
        this.ours.set(script.scriptId, index);
      }
      if (index === null) continue;
      for (const fn of script.functions) {
        const ranges = fn.ranges;
        const whole = ranges[0];
        if (!whole || whole.count === 0) continue;
        // V8 leaves out a nested block whose count equals its parent's (a branch taken as
        // often as its function ran): blocks once seen, then missing, ran that many times.
        const fnKey = `${index}:${whole.startOffset}`;
        let known = this.known.get(fnKey);
        if (!known) this.known.set(fnKey, (known = new Map()));
        for (let i = 1; i < ranges.length; i++) {
          const r = ranges[i]!;
          const k = `${r.startOffset}:${r.endOffset}`;
          if (!known.has(k)) known.set(k, r);
        }
        const counted = (block: string, count: number) => {
          if (count === 0) return;
          const feature = `${block}:${bucket(count)}`;
          if (this.features.has(feature)) return;
          fresh++;
          if (record) {
            this.features.add(feature);
            this.blocks.add(block);
          }
        };
        counted(`${fnKey}:${whole.endOffset}`, whole.count);
        for (const [k, r] of known) counted(`${index}:${k}`, countOf(ranges, r));
      }
    }
    return fresh;
  }

  close(): void {
    this.post('Profiler.stopPreciseCoverage');
    this.session.disconnect();
  }

  /** Same-thread inspector sessions answer synchronously: no await between input and counters. */
  private post(method: string, params?: object): unknown {
    let out: unknown;
    let failure: Error | null = null;
    let answered = false;
    this.session.post(method, params, (err, res) => {
      answered = true;
      failure = err;
      out = res;
    });
    if (!answered) throw new Error(`inspector did not answer ${method} synchronously`);
    if (failure) throw failure;
    return out;
  }
}
