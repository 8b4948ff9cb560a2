/**
 * Ranges of a file known to hold data, so a block-status question about them needs no
 * SEEK_DATA/SEEK_HOLE walk. Such walks are not cheap: on tmpfs, SEEK_HOLE from an offset
 * visits every cached page up to the next hole, which in a fully written file is its end
 * — a walk over the whole file for every large read that asks whether it may skip holes.
 *
 * Only data is remembered, never holes: a write can turn a hole into data behind our back
 * (a write through this backend, or another process), but only a punch turns data into a
 * hole, and punches through this backend forget their range. Calling a range data when it
 * has become a hole is harmless anyway: a read of it returns zeroes, only the chance to
 * skip sending them is lost. A file that is allocated in full needs no list at all.
 */
export class KnownData {
  /** Sorted, disjoint, non-adjacent [start, end) ranges. */
  private starts: number[] = [];
  private ends: number[] = [];
  /** Every byte of the device is data (the file is allocated in full). */
  private dense = false;

  constructor(private readonly maxRanges = 1024) {}

  /** The file's allocation as fstat reports it: blocks covering the whole device mean no holes. */
  noteAllocation(allocatedBytes: number, fileSize: number, deviceSize: number): void {
    this.dense = fileSize >= deviceSize && allocatedBytes >= deviceSize;
  }

  get allData(): boolean {
    return this.dense;
  }

  /** Whether all of [start, end) is known to be data. */
  covers(start: number, end: number): boolean {
    if (this.dense) return true;
    const i = this.indexAtOrBefore(start);
    return i >= 0 && this.ends[i]! >= end;
  }

  /** [start, end) was found to be data. */
  add(start: number, end: number): void {
    if (this.dense || end <= start) return;
    // Ranges touching or overlapping [start, end) merge with it.
    let first = this.indexAtOrBefore(start);
    if (first < 0 || this.ends[first]! < start) first++;
    let last = first;
    while (last < this.starts.length && this.starts[last]! <= end) last++;
    if (last > first) {
      start = Math.min(start, this.starts[first]!);
      end = Math.max(end, this.ends[last - 1]!);
    }
    this.starts.splice(first, last - first, start);
    this.ends.splice(first, last - first, end);
    // A file broken into more pieces than this is asked the file system again.
    if (this.starts.length > this.maxRanges) this.clear();
  }

  /** [start, end) may have become a hole (punched). */
  forget(start: number, end: number): void {
    this.dense = false;
    let i = this.indexAtOrBefore(start);
    if (i < 0 || this.ends[i]! <= start) i++;
    const keptStarts: number[] = [];
    const keptEnds: number[] = [];
    let j = i;
    for (; j < this.starts.length && this.starts[j]! < end; j++) {
      if (this.starts[j]! < start) {
        keptStarts.push(this.starts[j]!);
        keptEnds.push(start);
      }
      if (this.ends[j]! > end) {
        keptStarts.push(end);
        keptEnds.push(this.ends[j]!);
      }
    }
    this.starts.splice(i, j - i, ...keptStarts);
    this.ends.splice(i, j - i, ...keptEnds);
  }

  clear(): void {
    this.starts = [];
    this.ends = [];
  }

  get rangeCount(): number {
    return this.starts.length;
  }

  /** Index of the last range starting at or before `offset`, or -1. */
  private indexAtOrBefore(offset: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! <= offset) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }
}
