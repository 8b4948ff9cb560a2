/**
 * What the fabric tells whoever watches it: typed events on `node:diagnostics_channel`,
 * named `blockgate:fabric:<event>` (as undici names its own). The layers publish state
 * changes and member errors here and decide nothing about time or policy; the failover sets
 * (failover/), metrics and tests subscribe without patching the code they watch.
 *
 * Every message carries the publishing layer itself (`device`), so a subscriber can tell
 * apart two devices of the same name in one process, and its name for logs.
 */
import diagnostics from 'node:diagnostics_channel';
import type { BlockDevice, DeviceState } from './device.js';
import type { BlockErrorCode } from './errors.js';
import type { Operation } from './operation.js';
import type { ReplicaSlot, ReplicaState } from './layers/mirror/replica.js';
import type { ResyncOutcome, ResyncProgress } from './layers/mirror/resync.js';
import type { PathState } from './layers/multipath/path.js';

interface FromDevice {
  readonly device: BlockDevice;
  readonly name: string;
}

export interface DeviceStateEvent extends FromDevice {
  readonly from: DeviceState;
  readonly to: DeviceState;
  readonly reason: string;
}

export interface ReplicaStateEvent extends FromDevice {
  readonly replica: string;
  readonly slot: ReplicaSlot;
  readonly from: ReplicaState;
  readonly to: ReplicaState;
  readonly reason: string;
}

export interface PathStateEvent extends FromDevice {
  readonly path: string;
  readonly from: PathState;
  readonly to: PathState;
  readonly reason: string;
}

/** A member of a set layer (a replica, a path) failed a request; the layer has coped with it. */
export interface IoErrorEvent extends FromDevice {
  readonly member: string;
  readonly op: Operation;
  readonly code: BlockErrorCode | 'unknown';
  /** The way to the member failed (see isTransportError), not the medium. */
  readonly transport: boolean;
  /** The member was already out of service: a request that was in flight when it went. */
  readonly alreadyOut: boolean;
  readonly message: string;
}

export interface ResyncProgressEvent extends FromDevice {
  readonly progress: ResyncProgress;
}

export interface ResyncEndEvent extends FromDevice {
  readonly replica: string;
  readonly outcome: ResyncOutcome;
  readonly bytesCopied: number;
}

/** State a layer keeps on disk (a mirror's bitmaps and replica states) could not be read or written. */
export interface MetadataErrorEvent extends FromDevice {
  readonly what: string;
  readonly message: string;
}

/** A typed channel: publishing costs one property read while nobody listens. */
export class FabricChannel<T> {
  private readonly channel: diagnostics.Channel;

  constructor(readonly event: string) {
    this.channel = diagnostics.channel(`blockgate:fabric:${event}`);
  }

  get name(): string {
    return `blockgate:fabric:${this.event}`;
  }

  publish(message: T): void {
    if (this.channel.hasSubscribers) this.channel.publish(message);
  }

  /** Returns the unsubscribe function. */
  subscribe(listener: (message: T) => void): () => void {
    const handler = (message: unknown): void => listener(message as T);
    diagnostics.subscribe(this.name, handler);
    return () => diagnostics.unsubscribe(this.name, handler);
  }
}

export const fabricEvents = {
  deviceState: new FabricChannel<DeviceStateEvent>('device-state'),
  replicaState: new FabricChannel<ReplicaStateEvent>('replica-state'),
  pathState: new FabricChannel<PathStateEvent>('path-state'),
  ioError: new FabricChannel<IoErrorEvent>('io-error'),
  resyncProgress: new FabricChannel<ResyncProgressEvent>('resync-progress'),
  resyncEnd: new FabricChannel<ResyncEndEvent>('resync-end'),
  metadataError: new FabricChannel<MetadataErrorEvent>('metadata-error'),
} as const;
