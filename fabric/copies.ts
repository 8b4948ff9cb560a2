/**
 * Counts bytes the data path copies between buffers, so that the zero-copy claim is
 * measured by a test rather than assumed. Every deliberate copy on the request path
 * calls `countCopy`; the medium's own store (memory backend chunks) is counted apart as
 * `stored`, because keeping the data is the device's job, not a transfer copy.
 */
export const copyStats = {
  /** Bytes copied while moving a request between socket, fabric and backend. */
  transfer: 0,
  /** Bytes copied into or out of a memory backend's own store. */
  stored: 0,
};

export function countCopy(bytes: number): void {
  copyStats.transfer += bytes;
}

export function countStored(bytes: number): void {
  copyStats.stored += bytes;
}

export function resetCopyStats(): void {
  copyStats.transfer = 0;
  copyStats.stored = 0;
}
