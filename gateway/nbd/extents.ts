/** Device extents turned into what NBD sends: block-status descriptors and sparse-read segments. */
import type { Extent } from '../../fabric/device.js';
import { NBD_STATE_HOLE, NBD_STATE_ZERO } from '../../fabric/protocols/nbd.js';
import type { ReadSegment } from './reply-writer.js';

/** Cap on descriptors in one block-status reply; clients ask again for the rest. */
const MAX_DESCRIPTORS = 2048;

function stateOf(e: Extent): number {
  return (e.hole ? NBD_STATE_HOLE : 0) | (e.zero ? NBD_STATE_ZERO : 0);
}

/**
 * (length, flags) pairs for a BLOCK_STATUS chunk: clipped to the request (so lengths
 * fit 32 bits and never overshoot), neighbours with equal flags merged, at least one.
 */
export function descriptorsOf(extents: readonly Extent[], length: number, reqOne: boolean): number[] {
  const out: number[] = [];
  let covered = 0;
  for (const e of extents) {
    if (covered >= length || e.length <= 0) break;
    const take = Math.min(e.length, length - covered);
    const state = stateOf(e);
    const n = out.length;
    if (n > 0 && out[n - 1] === state) out[n - 2] = out[n - 2]! + take;
    else {
      if (n / 2 >= (reqOne ? 1 : MAX_DESCRIPTORS)) break;
      out.push(take, state);
    }
    covered += take;
  }
  if (out.length === 0) out.push(length, 0);
  return out;
}

/** Data and hole segments covering a read of `length` bytes; unknown tails are data. */
export function planSegments(extents: readonly Extent[], length: number): ReadSegment[] {
  const out: { at: number; length: number; hole: boolean }[] = [];
  let at = 0;
  for (const e of extents) {
    if (at >= length || e.length <= 0) break;
    const take = Math.min(e.length, length - at);
    const last = out[out.length - 1];
    if (last && last.hole === e.zero) last.length += take;
    else out.push({ at, length: take, hole: e.zero });
    at += take;
  }
  if (at < length) {
    const last = out[out.length - 1];
    if (last && !last.hole) last.length += length - at;
    else out.push({ at, length: length - at, hole: false });
  }
  return out;
}
