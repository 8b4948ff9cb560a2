import * as op from './opcodes.js';
import { ScsiError } from './sense.js';

/** Offset of the first differing byte, or -1 when equal. */
export function firstDifference(a: Buffer, b: Buffer): number {
  if (a.equals(b)) return -1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

/** MISCOMPARE sense with the byte offset of the first difference in INFORMATION (SBC-3). */
export function miscompare(offset: number): ScsiError {
  return new ScsiError(op.MISCOMPARE, op.ASC_MISCOMPARE_DURING_VERIFY, { information: offset });
}
