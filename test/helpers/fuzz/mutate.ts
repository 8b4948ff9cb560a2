/**
 * A seeded byte-stream mutator (the AFL/libFuzzer havoc operators): bit flips, interesting
 * values over the length and count fields protocols carry, inserted, deleted and repeated
 * runs, and splices of two seeds. Seeded, so a failing run is reproduced from its seed.
 */

/** mulberry32: small, fast, good enough to drive mutations reproducibly. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff, 0x10, 0x20, 0x40];
const INTERESTING_32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x10000, 0x1000000, 0x10001, 65536 * 128, 0x100000, 512, 4096];
/** Inputs are kept small: the point is the parsers, not the bandwidth. */
const MAX_INPUT = 256 * 1024;

/**
 * A mutant of one of `seeds` (splices draw on all of them). `recent` favours the later seeds,
 * as libFuzzer weighs the units a guided corpus added last: they are the newest ground.
 */
export function mutate(seeds: readonly Buffer[], random: () => number, recent = false): Buffer {
  const pick = (n: number) => Math.floor(random() * n);
  let b = Buffer.from(seeds[recent ? Math.floor(Math.sqrt(random()) * seeds.length) : pick(seeds.length)]!);
  const rounds = 1 + pick(8);
  for (let r = 0; r < rounds; r++) {
    const at = b.length ? pick(b.length) : 0;
    switch (pick(9)) {
      case 0:
        if (b.length) b[at] = b[at]! ^ (1 << pick(8));
        break;
      case 1:
        if (b.length) b[at] = INTERESTING_8[pick(INTERESTING_8.length)]!;
        break;
      case 2:
        if (b.length >= 4) b.writeUInt32BE(INTERESTING_32[pick(INTERESTING_32.length)]!, Math.min(at, b.length - 4));
        break;
      case 3:
        if (b.length >= 2) b.writeUInt16BE(pick(0x10000), Math.min(at, b.length - 2));
        break;
      case 4:
        if (b.length) b[at] = pick(256);
        break;
      case 5: {
        const n = 1 + pick(64);
        const fill = Buffer.alloc(n);
        for (let i = 0; i < n; i++) fill[i] = pick(256);
        b = Buffer.concat([b.subarray(0, at), fill, b.subarray(at)]);
        break;
      }
      case 6:
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + pick(64)))]);
        break;
      case 7: {
        const len = Math.min(b.length - at, 1 + pick(96));
        b = Buffer.concat([b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len)]);
        break;
      }
      default: {
        const other = seeds[pick(seeds.length)]!;
        const from = pick(other.length + 1);
        b = Buffer.concat([b.subarray(0, at), other.subarray(from)]);
      }
    }
  }
  return b.length > MAX_INPUT ? b.subarray(0, MAX_INPUT) : b;
}

/** Cut a stream into the chunks it is written in, so parsers see every kind of split. */
export function chunks(b: Buffer, random: () => number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < b.length; ) {
    const n = random() < 0.5 ? b.length - at : 1 + Math.floor(random() * 96);
    out.push(b.subarray(at, at + n));
    at += n;
  }
  return out;
}
