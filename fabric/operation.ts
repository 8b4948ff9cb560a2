/**
 * The one list of block operations. Counters, fault injection and the layers that forward a
 * request to a child they pick (multipath, mirror) all name operations with it; wire
 * protocols keep their own numbers (NBD_CMD_*, SCSI opcodes) at their edges.
 */
import type { BlockDevice, Extent, WriteOptions, ZeroOptions } from './device.js';

export const OPERATIONS = ['read', 'write', 'flush', 'trim', 'writeZeroes', 'blockStatus', 'cache'] as const;
export type Operation = (typeof OPERATIONS)[number];

/** One request, for a layer that must hold it to issue it again (on another path, to every replica). */
export type Request =
  | { readonly op: 'read'; readonly offset: number; readonly target: Buffer }
  | { readonly op: 'write'; readonly offset: number; readonly data: readonly Buffer[]; readonly options?: WriteOptions }
  | { readonly op: 'flush' }
  | { readonly op: 'trim'; readonly offset: number; readonly length: number; readonly options?: WriteOptions }
  | { readonly op: 'writeZeroes'; readonly offset: number; readonly length: number; readonly options?: ZeroOptions }
  | { readonly op: 'blockStatus'; readonly offset: number; readonly length: number }
  | { readonly op: 'cache'; readonly offset: number; readonly length: number };

/** Requests that change the device's content or durability. */
export type MutatingRequest = Extract<Request, { op: 'write' | 'flush' | 'trim' | 'writeZeroes' }>;

/** Issue `request` on `device`; a synchronous throw becomes a rejection. */
export function issue(device: BlockDevice, request: Request): Promise<Extent[] | void> {
  try {
    switch (request.op) {
      case 'read':
        return device.read(request.offset, request.target);
      case 'write':
        return device.write(request.offset, request.data, request.options);
      case 'flush':
        return device.flush();
      case 'trim':
        return device.trim(request.offset, request.length, request.options);
      case 'writeZeroes':
        return device.writeZeroes(request.offset, request.length, request.options);
      case 'blockStatus':
        return device.blockStatus(request.offset, request.length);
      case 'cache':
        return device.cache(request.offset, request.length);
    }
  } catch (err) {
    return Promise.reject(err);
  }
}
