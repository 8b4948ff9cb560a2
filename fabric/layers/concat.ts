import type { BlockDevice } from '../device.js';
import { SpreadDevice } from './spread.js';

/** Children end to end: the first's bytes, then the second's, and so on (a linear volume). */
export class ConcatDevice extends SpreadDevice {
  readonly size: number;
  /** starts[i] is where child i begins; the last entry is the total size. */
  private readonly starts: number[];

  constructor(name: string, children: readonly BlockDevice[]) {
    super(name, children);
    const min = this.blockSizes.minimum;
    this.starts = [0];
    for (const c of children) this.starts.push(this.starts[this.starts.length - 1]! + (c.size - (c.size % min)));
    this.size = this.starts[this.starts.length - 1]!;
  }

  protected locate(offset: number): void {
    let i = 0;
    while (offset >= this.starts[i + 1]!) i++;
    this.at.child = i;
    this.at.childOffset = offset - this.starts[i]!;
    this.at.run = this.starts[i + 1]! - offset;
  }
}
