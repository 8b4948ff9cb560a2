/**
 * One path of a multipath device: the child device, its state and counters.
 *
 *   active   carries I/O            standby  healthy, waits (active-passive)
 *   failed   out of service: a transport failure took it out, or the set's controller did
 *            (a failed probe, a marginal path, an operator); only the controller brings it back
 */
import type { BlockDevice } from '../../device.js';

export type PathState = 'active' | 'standby' | 'failed';

export class Path {
  state: PathState = 'standby';
  /** Requests issued and not yet settled. */
  outstanding = 0;
  ios = 0;
  /** Transport failures of requests on this path. */
  errors = 0;
  lastError: string | undefined;
  readonly probeBuffer: Buffer;

  constructor(
    readonly device: BlockDevice,
    /** Priority order: lower is preferred. */
    readonly index: number,
    probeSize: number,
  ) {
    this.probeBuffer = Buffer.alloc(probeSize);
  }

  get name(): string {
    return this.device.name;
  }

  get usable(): boolean {
    return this.state !== 'failed';
  }
}
