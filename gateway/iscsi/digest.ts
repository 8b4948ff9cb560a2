import { createRequire } from 'node:module';

/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the iSCSI header and data digest
 * (RFC 7143 §12.1, appendix B.4), incremental over Buffer slices so data segments are never
 * concatenated to be checked.
 *
 * `crc32c` uses the SSE4.2/ARMv8 CRC instructions through @node-rs/crc32 (a few GiB/s; the
 * JavaScript below does about 340 MiB/s, less than the iSCSI path itself moves). The
 * JavaScript version — slice-by-8 tables, eight bytes per step, no allocation — stays as the
 * fallback where the native module cannot load (or BLOCKGATE_CRC32C=js) and as the oracle
 * the tests hold the native one to.
 */

type NativeCrc32c = (input: Buffer, initialState?: number) => number;

function loadNative(): NativeCrc32c | undefined {
  if (process.env.BLOCKGATE_CRC32C === 'js') return undefined;
  try {
    return (createRequire(import.meta.url)('@node-rs/crc32') as { crc32c: NativeCrc32c }).crc32c;
  } catch {
    return undefined;
  }
}

const native = loadNative();

/** Which implementation `crc32c` runs (logged at start-up). */
export const crc32cImplementation: 'native' | 'js' = native ? 'native' : 'js';

const POLY = 0x82f63b78;
const TABLES: Uint32Array[] = buildTables();

function buildTables(): Uint32Array[] {
  const t = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[0]![i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    let c = t[0]![i]!;
    for (let s = 1; s < 8; s++) {
      c = (c >>> 8) ^ t[0]![c & 0xff]!;
      t[s]![i] = c >>> 0;
    }
  }
  return t;
}

const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];

/** Continue a CRC over `buf`; `state` is the running, not-yet-inverted value. */
function update(state: number, buf: Uint8Array): number {
  let crc = state;
  let i = 0;
  const n = buf.length;
  const end8 = n - (n % 8);
  while (i < end8) {
    const lo = (crc ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24))) >>> 0;
    crc =
      T7[lo & 0xff]! ^
      T6[(lo >>> 8) & 0xff]! ^
      T5[(lo >>> 16) & 0xff]! ^
      T4[lo >>> 24]! ^
      T3[buf[i + 4]!]! ^
      T2[buf[i + 5]!]! ^
      T1[buf[i + 6]!]! ^
      T0[buf[i + 7]!]!;
    i += 8;
  }
  while (i < n) crc = (crc >>> 8) ^ T0[(crc ^ buf[i++]!) & 0xff]!;
  return crc >>> 0;
}

const ZERO_PAD = Buffer.alloc(4);

/** CRC32C of the concatenation of `parts`, plus `padding` (< 4) zero bytes (data segment pad). */
export const crc32c: (parts: Buffer | readonly Buffer[], padding?: number) => number = native
  ? (parts, padding = 0) => {
      let crc = 0;
      if (Buffer.isBuffer(parts)) crc = native(parts, 0);
      else for (let i = 0; i < parts.length; i++) crc = native(parts[i]!, crc);
      return padding ? native(ZERO_PAD.subarray(0, padding), crc) : crc;
    }
  : crc32cJs;

/** The JavaScript CRC32C: the fallback, and the tests' oracle for the native one. */
export function crc32cJs(parts: Uint8Array | readonly Uint8Array[], padding = 0): number {
  let state = 0xffffffff;
  if (parts instanceof Uint8Array) state = update(state, parts);
  else for (const p of parts) state = update(state, p);
  for (let i = 0; i < padding; i++) state = (state >>> 8) ^ T0[state & 0xff]!;
  return (state ^ 0xffffffff) >>> 0;
}

/** iSCSI puts the digest on the wire least significant byte first (RFC 7143 §12.1). */
export function writeDigest(value: number, target: Buffer, offset: number): void {
  target.writeUInt32LE(value, offset);
}
