import type { Capabilities } from '../device.js';
import { Layer } from '../layer.js';

/** Presents the device below as read-only; the checked boundary then refuses writes. */
export class ReadOnlyLayer extends Layer {
  override get capabilities(): Capabilities {
    return { ...this.next.capabilities, readOnly: true, trim: false, writeZeroes: false, fastZero: false };
  }
}
