/**
 * The failover sets of one member: one per mirror and per multipath device of its graph.
 * The registry subscribes once to the fabric's events and hands each to the set of the
 * device that published it; it answers the sets' questions about each other (which member
 * is itself a set) and about the graph (which device is free to become a spare).
 *
 *   const sets = buildFailoverSets(devices, specs, { usedBy, onMembershipChange });
 *   sets.start(); … sets.get('m0')?.state(); … sets.stop();
 */
import type { BlockDevice } from '../fabric/device.js';
import { fabricEvents, type DeviceStateEvent } from '../fabric/events.js';
import { logger } from '../fabric/log.js';
import type { MirrorDevice } from '../fabric/layers/mirror/mirror.js';
import type { MultipathDevice } from '../fabric/layers/multipath/multipath.js';
import { InvalidArgument, Refused } from './action.js';
import type { MembershipChange, SetContext } from './context.js';
import { mirrorActions } from './mirror-actions.js';
import { MirrorSet, type MirrorPolicy } from './mirror-set.js';
import { pathActions } from './path-actions.js';
import { PathSet, type PathPolicy } from './path-set.js';
import type { FailoverSet, FailoverSetState } from './set.js';

export interface FailoverSetsOptions {
  /** The member's devices by name (for spares added at run time). */
  readonly devices?: ReadonlyMap<string, BlockDevice>;
  /** What uses device `name` (a layer, an export), if anything: such a device cannot become a spare. */
  readonly usedBy?: (name: string) => string | undefined;
  /** Keep a membership change where the configuration lives; without it, changes last until restart. */
  readonly onMembershipChange?: (change: MembershipChange) => Promise<void>;
}

const log = logger('failover');

export class FailoverSets implements SetContext {
  private readonly sets = new Map<string, FailoverSet>();
  private readonly mirrors = new Map<BlockDevice, MirrorSet>();
  private readonly multipaths = new Map<BlockDevice, PathSet>();
  /** Devices given to a set at run time (spares), by the set's name. */
  private readonly claimed = new Map<string, string>();
  /** Devices a set gave back (a removed spare): no longer used by what the graph says. */
  private readonly freed = new Set<string>();
  private readonly unsubscribe: Array<() => void> = [];
  private started = false;

  constructor(private readonly options: FailoverSetsOptions = {}) {
    const onDeviceState = (e: DeviceStateEvent): void => {
      this.mirrors.get(e.device)?.onDeviceState();
      this.multipaths.get(e.device)?.onDeviceState();
    };
    this.unsubscribe.push(
      fabricEvents.replicaState.subscribe((e) => this.mirrors.get(e.device)?.onReplicaState(e)),
      fabricEvents.ioError.subscribe((e) => this.mirrors.get(e.device)?.onIoError(e)),
      fabricEvents.pathState.subscribe((e) => this.multipaths.get(e.device)?.onPathState(e)),
      fabricEvents.deviceState.subscribe(onDeviceState),
    );
  }

  addMirror(mirror: MirrorDevice, policy: Partial<MirrorPolicy> = {}): MirrorSet {
    const set = new MirrorSet(mirror, policy, this, mirrorActions);
    this.register(set);
    this.mirrors.set(mirror, set);
    if (this.started) set.start();
    return set;
  }

  addMultipath(multipath: MultipathDevice, policy: Partial<PathPolicy> = {}): PathSet {
    const set = new PathSet(multipath, policy, this, pathActions);
    this.register(set);
    this.multipaths.set(multipath, set);
    if (this.started) set.start();
    return set;
  }

  start(): void {
    this.started = true;
    for (const set of this.sets.values()) set.start();
    log.info({ sets: [...this.sets.keys()] }, 'failover sets started');
  }

  /** Stop every set and stop listening; the devices are closed by their owner afterwards. */
  stop(): void {
    for (const set of this.sets.values()) set.stop();
    for (const off of this.unsubscribe.splice(0)) off();
  }

  get(name: string): FailoverSet | undefined {
    return this.sets.get(name);
  }

  list(): FailoverSet[] {
    return [...this.sets.values()];
  }

  states(): FailoverSetState[] {
    return this.list().map((s) => s.state());
  }

  async settled(): Promise<void> {
    await Promise.all(this.list().map((s) => s.settled()));
  }

  // ---- SetContext ----

  set(name: string): FailoverSet | undefined {
    return this.sets.get(name);
  }

  parentOf(name: string): { set: string; member: string } | undefined {
    for (const set of this.mirrors.values()) if (set.replicaInfo(name)) return { set: set.name, member: name };
    for (const set of this.multipaths.values()) if (set.pathInfo(name)) return { set: set.name, member: name };
    return undefined;
  }

  claimDevice(name: string, by: string): BlockDevice {
    const device = this.options.devices?.get(name);
    if (!device) throw new InvalidArgument(`no device named ${JSON.stringify(name)} in this member's configuration`);
    const user = this.claimed.get(name) ?? (this.freed.has(name) ? undefined : this.options.usedBy?.(name)) ?? this.parentOf(name)?.set;
    if (user !== undefined) throw new Refused(`device ${name} is in use by ${user}`);
    if (this.sets.has(name)) throw new Refused(`device ${name} is itself a failover set`);
    this.claimed.set(name, by);
    this.freed.delete(name);
    return device;
  }

  releaseDevice(name: string): void {
    this.claimed.delete(name);
    this.freed.add(name);
  }

  async membershipChanged(change: MembershipChange): Promise<void> {
    if (this.options.onMembershipChange) await this.options.onMembershipChange(change);
    else log.warn(change, 'membership change not stored: it lasts until the member restarts');
  }

  private register(set: FailoverSet): void {
    if (this.sets.has(set.name)) throw new Error(`failover set ${set.name} registered twice`);
    this.sets.set(set.name, set);
  }
}
