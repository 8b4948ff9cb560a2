/**
 * The one interface every block device implements: backends (memory, file, remote NBD/iSCSI)
 * and layers (mirror, multipath, stripe…) alike. Front ends only ever see this.
 *
 * Offsets and lengths are byte counts held in JS numbers: exact up to 2^53, i.e. 8 PiB.
 * Devices may assume requests were validated by a CheckedDevice (fabric/checked.ts): in
 * range, aligned to `blockSizes.minimum`, no larger than `blockSizes.maximum`, and only
 * operations the capabilities allow.
 */

import type { RangeHold, RangeLock } from './range-lock.js';

export interface BlockSizes {
  /** Smallest unit a request may address; offsets and lengths are multiples of it. */
  readonly minimum: number;
  /** Size that avoids read-modify-write. */
  readonly preferred: number;
  /** Largest payload of one read or write. */
  readonly maximum: number;
}

export interface Capabilities {
  readonly readOnly: boolean;
  readonly flush: boolean;
  readonly fua: boolean;
  readonly trim: boolean;
  readonly writeZeroes: boolean;
  /** writeZeroes with `fastOnly` can succeed (otherwise it fails with ENOTSUP). */
  readonly fastZero: boolean;
  readonly cache: boolean;
  /** blockStatus reports real holes/zeroes rather than "all data". */
  readonly blockStatus: boolean;
  /**
   * blockStatus is answered here, without a round trip to another server, so a front end may
   * ask it before every large read to send holes instead of zeroes. (Asking a remote server
   * first would add a round trip to each read — and on tmpfs, a walk of its page cache.)
   */
  readonly localBlockStatus: boolean;
  /** Several connections see one consistent device and a flush on one covers all. */
  readonly multiConn: boolean;
  readonly rotational: boolean;
}

export interface WriteOptions {
  /** Force unit access: on stable storage before the promise resolves. */
  readonly fua?: boolean;
  /**
   * The caller's exclusive hold on the range (fabric/range-lock.ts): the device's range
   * lock lets this request through instead of making it wait for the hold it belongs to.
   */
  readonly hold?: RangeHold;
}

export interface ZeroOptions extends WriteOptions {
  /** Leave the range allocated (write real zeroes) instead of punching a hole. */
  readonly noHole?: boolean;
  /** Fail with ENOTSUP unless zeroing is faster than writing zeroes. */
  readonly fastOnly?: boolean;
}

/** One run of the device with the same allocation state, as NBD base:allocation reports it. */
export interface Extent {
  readonly length: number;
  /** Not allocated: reads return zeroes and cost nothing. */
  readonly hole: boolean;
  /** Reads return zeroes (allocated or not). */
  readonly zero: boolean;
}

export type DeviceState = 'optimal' | 'degraded' | 'rebuilding' | 'failed';

export interface DeviceStatus {
  readonly state: DeviceState;
  /** Free-form detail for operators: replicas, paths, resync progress. */
  readonly detail?: Record<string, unknown>;
}

export interface BlockDevice {
  /** Unique in the device graph; used in logs and counters. */
  readonly name: string;
  readonly size: number;
  readonly blockSizes: BlockSizes;
  readonly capabilities: Capabilities;
  /**
   * The range lock every writer of this device goes through, when it has one: the switch
   * puts one over each registered device (fabric/layers/range-locked.ts) and layers above
   * it pass it through, so all front ends of an export share it.
   */
  readonly rangeLock?: RangeLock;

  /** Fill `target` (its whole length) with the bytes at `offset`. */
  read(offset: number, target: Buffer): Promise<void>;
  /**
   * Write the concatenation of `data` at `offset`. The slices are views into the front
   * end's receive arenas, valid only until the returned promise settles (the arena is then
   * reused): copy whatever must outlive the request, and never mutate them.
   */
  write(offset: number, data: readonly Buffer[], options?: WriteOptions): Promise<void>;
  flush(): Promise<void>;
  trim(offset: number, length: number, options?: WriteOptions): Promise<void>;
  writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void>;
  /** Extents covering at least the start of [offset, offset+length); may stop early. */
  blockStatus(offset: number, length: number): Promise<Extent[]>;
  /** Advise that the range will be read soon. */
  cache(offset: number, length: number): Promise<void>;

  /** Health as the failover layers see it; plain backends are `optimal` until they fail. */
  status(): DeviceStatus;
  /** Release resources. Outstanding requests finish or fail with ESHUTDOWN. */
  close(): Promise<void>;
}

export function totalLength(data: readonly Buffer[]): number {
  let n = 0;
  for (const b of data) n += b.length;
  return n;
}

export const DEFAULT_CAPABILITIES: Capabilities = Object.freeze({
  readOnly: false,
  flush: true,
  fua: true,
  trim: true,
  writeZeroes: true,
  fastZero: true,
  cache: true,
  blockStatus: true,
  localBlockStatus: true,
  multiConn: true,
  rotational: false,
});
