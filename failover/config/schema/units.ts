import { Type } from '@sinclair/typebox';

/**
 * Sizes in the configuration: a number of bytes, or a string with a binary suffix ("512",
 * "4k", "512MiB", "1G", "2T", "1.5G"). The schema checks the spelling (the `size` format,
 * registered with ajv in validate.ts); configurations keep sizes as written, so
 * `check-config` and the stored record show what the operator wrote, and `bytes()` reads
 * them where they are used.
 */
export const SIZE_FORMAT = 'size';

export const Size = Type.Unsafe<number | string>({
  type: ['integer', 'string'],
  minimum: 0,
  maximum: Number.MAX_SAFE_INTEGER,
  format: SIZE_FORMAT,
  'x-problem': 'a size in bytes such as 1048576, "512MiB" or "1G"',
  examples: ['1GiB', '512MiB', 1048576],
});

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

/** Bytes, or undefined when `v` is not a size (negative, fractional bytes, unknown suffix, ≥ 2^53). */
export function parseSize(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$/i.exec(v) ?? /^\s*(\d+)\s*(b)\s*$/i.exec(v);
  if (!m) return undefined;
  const bytes = Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** The bytes of a size that passed validation. */
export function bytes(size: number | string): number {
  const n = parseSize(size);
  if (n === undefined) throw new TypeError(`not a validated size: ${JSON.stringify(size)}`);
  return n;
}

/** 1073741824 → "1 GiB", 1536 → "1.5 KiB": for messages. */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${Number(v.toFixed(2))} ${units[i]}`;
}
