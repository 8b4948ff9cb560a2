import type { Extent, WriteOptions, ZeroOptions } from '../device.js';
import { BlockError } from '../errors.js';
import { Layer } from '../layer.js';
import type { BlockDevice } from '../device.js';

/**
 * Admits a request only while `mayServe()` says so (for a cluster member: while it is the
 * set's Primary by its own lease clock). The check is per request and synchronous, so a
 * process that wakes from a pause refuses I/O before any timer has told it it was fenced.
 *
 * A refused request is held, not failed: the member closes its front-end connections as it
 * fences, and a client that reconnects to the new Primary re-issues what never got a reply.
 * An error reply would instead reach the application. The hold is bounded (`holdMs`) so a
 * connection that is somehow not closed cannot pin requests forever.
 */
export class FencedLayer extends Layer {
  constructor(
    next: BlockDevice,
    private readonly mayServe: () => boolean,
    private readonly holdMs = 30_000,
  ) {
    super(next);
  }

  private refuse(): Promise<never> {
    return new Promise((_, reject) => {
      setTimeout(() => reject(new BlockError('ESHUTDOWN', `${this.name}: this member is no longer Primary`)), this.holdMs).unref();
    });
  }

  override read(offset: number, target: Buffer): Promise<void> {
    return this.mayServe() ? this.next.read(offset, target) : this.refuse();
  }
  override write(offset: number, data: readonly Buffer[], options?: WriteOptions): Promise<void> {
    return this.mayServe() ? this.next.write(offset, data, options) : this.refuse();
  }
  override flush(): Promise<void> {
    return this.mayServe() ? this.next.flush() : this.refuse();
  }
  override trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.mayServe() ? this.next.trim(offset, length, options) : this.refuse();
  }
  override writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    return this.mayServe() ? this.next.writeZeroes(offset, length, options) : this.refuse();
  }
  override blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.mayServe() ? this.next.blockStatus(offset, length) : this.refuse();
  }
  override cache(offset: number, length: number): Promise<void> {
    return this.mayServe() ? this.next.cache(offset, length) : this.refuse();
  }
  /** Closing is the owner's business: the wrapped device is closed by the switch. */
  override close(): Promise<void> {
    return Promise.resolve();
  }
}
