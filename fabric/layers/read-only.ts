import type { Capabilities } from '../device.js';
import { Layer } from '../layer.js';

/**
 * Presents the device below as read-only; the checked boundary then refuses writes. The
 * answer is read on every request, so it is built once per set of capabilities below (as
 * nbdkit caches each layer's can_* answers), not per call.
 */
export class ReadOnlyLayer extends Layer {
  private below: Capabilities | undefined;
  private mine: Capabilities | undefined;

  override get capabilities(): Capabilities {
    const below = this.next.capabilities;
    if (below !== this.below || this.mine === undefined) {
      this.below = below;
      this.mine = Object.freeze({ ...below, readOnly: true, trim: false, writeZeroes: false, fastZero: false });
    }
    return this.mine;
  }
}
