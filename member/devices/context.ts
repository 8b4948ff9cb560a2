import type { BlockDevice } from '../../fabric/device.js';
import type { DeviceType, SpecOf } from '../../failover/config/schema/devices.js';

/** What a factory gets besides its spec. */
export interface BuildContext {
  /** The member's data directory, for state a device persists (bitmaps, reservations). */
  readonly dataDir: string;
  /** Which cluster member builds the graph (a replicated device opens this member's replica). */
  readonly memberId?: string;
  /** The device declared under `name`, built on first use (each device has one parent). */
  use(name: string, field: string): Promise<BlockDevice>;
  /**
   * The members of a failover set (replicas, paths), each as `use` builds it, except that a
   * member that cannot be reached now (a transport failure: its server is down) is built
   * detached, with the geometry of one that could be reached, so the set starts degraded as
   * md assembles an array with a disk missing. At least one member must answer.
   */
  useMembers(names: readonly string[], fieldOf: (index: number) => string): Promise<BlockDevice[]>;
}

/** Builds one kind of device from its validated spec; `field` names the spec in errors. */
export type DeviceFactory<K extends DeviceType> = (spec: SpecOf<K>, context: BuildContext, field: string) => Promise<BlockDevice>;
