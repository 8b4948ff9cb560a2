/** One request in flight on an NBD connection, found again by its cookie when replies come. */
import type { Extent } from '../../device.js';
import type { BlockErrorCode } from '../../errors.js';

export class NbdRequest {
  /** First error chunk seen; the request fails with it once the server says DONE. */
  errorCode: BlockErrorCode | undefined = undefined;
  errorMessage = '';
  extents: Extent[] | undefined = undefined;
  /** When the request times out (ms, Date.now clock). */
  deadline = 0;

  constructor(
    readonly cookie: number,
    readonly command: number,
    readonly offset: number,
    readonly length: number,
    /** Where a read's data goes. */
    readonly target: Buffer | undefined,
    readonly resolve: (extents: Extent[] | undefined) => void,
    readonly reject: (err: Error) => void,
  ) {}
}
