/** Serial number arithmetic on 32-bit sequence numbers (RFC 1982, as RFC 7143 §4.2.2.1 uses it). */

export const seqAdd = (a: number, n: number): number => (a + n) >>> 0;

/** a < b in serial arithmetic. */
export const seqLt = (a: number, b: number): boolean => a !== b && ((a - b) | 0) < 0;

export const seqLe = (a: number, b: number): boolean => a === b || seqLt(a, b);

/** a within [lo, hi] in serial arithmetic. */
export const seqInWindow = (a: number, lo: number, hi: number): boolean => seqLe(lo, a) && seqLe(a, hi);
