import type { BlockDevice } from '../fabric/device.js';
import type { FailoverSet } from './set.js';

/** A change of a set's membership that the configuration must keep across a restart. */
export interface MembershipChange {
  readonly set: string;
  readonly change: 'spare-added' | 'spare-removed';
  readonly device: string;
}

/** What a set asks of the registry that holds it (sets.ts). */
export interface SetContext {
  /** The set driving device `name`, if any: a member that is itself a set. */
  set(name: string): FailoverSet | undefined;
  /** The set, and member of it, that set `name` belongs to. */
  parentOf(name: string): { readonly set: string; readonly member: string } | undefined;
  /** A device of the graph nothing uses (no layer, no export, no set), given to the caller. */
  claimDevice(name: string, by: string): BlockDevice;
  /** A device given back (a removed spare): free again. */
  releaseDevice(name: string): void;
  /** Record a membership change where the configuration lives, so a restart keeps it. */
  membershipChanged(change: MembershipChange): Promise<void>;
}
