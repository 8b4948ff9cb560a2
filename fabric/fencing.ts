import type { BlockDevice } from './device.js';

/**
 * A fencing token, as blockgate's NBD extension carries it (fabric/protocols/nbd.ts):
 * ordered by `term` first — a cluster set's arbitration fencing token, 0 outside a cluster
 * or before this member first held the role — then by `generation`, a per-device count that
 * grows each time a path is taken out. A Primary elected later wins over every path
 * generation of an earlier one; within a term, the newer path generation wins.
 */
export interface FenceToken {
  readonly term: number;
  readonly generation: number;
}

/** Largest generation the wire carries (u32). */
export const MAX_FENCE_GENERATION = 0xffffffff;

/** <0, 0, >0 as `a` is older than, equal to, newer than `b`. */
export function compareTokens(a: FenceToken, b: FenceToken): number {
  return a.term !== b.term ? a.term - b.term : a.generation - b.generation;
}

export function formatToken(t: FenceToken): string {
  return `${t.term}.${t.generation}`;
}

/**
 * A device whose server can refuse a superseded client (blockgate's NBD fencing extension).
 * `fenceTerm(term)` presents the set's arbitration token as the term of every later token
 * (a newly elected Primary); the server then refuses requests still arriving under an older
 * one — the late writes of a deposed Primary. Terms only grow; an older one is ignored.
 */
export interface Fenceable {
  fenceTerm(term: number): void;
}

export function isFenceable(device: BlockDevice): device is BlockDevice & Fenceable {
  return typeof (device as Partial<Fenceable>).fenceTerm === 'function';
}

/** A device that presents a whole token (an NBD client); its owner (a path set) says which. */
export interface TokenPresenter {
  fence(token: FenceToken): void;
}

export function presentsTokens(device: BlockDevice): device is BlockDevice & TokenPresenter {
  return typeof (device as Partial<TokenPresenter>).fence === 'function';
}
