import type { BlockDevice, BlockSizes, Capabilities, DeviceState, DeviceStatus, Extent, WriteOptions, ZeroOptions } from '../../device.js';
import { totalLength } from '../../device.js';
import { BlockError, isBlockError, isTransportError } from '../../errors.js';
import { fabricEvents } from '../../events.js';
import { logger, type Logger } from '../../log.js';
import { checkBitmapGeometry } from '../../bitmap/limits.js';
import { issue, type MutatingRequest, type Operation } from '../../operation.js';
import { DirtyBitmap } from '../../bitmap/dirty-bitmap.js';
import { FILES, type MetadataStore } from '../../bitmap/metadata-store.js';
import { SerialFlush } from '../../bitmap/serial-flush.js';
import { RegionBits } from '../../bitmap/region-bits.js';
import { commonBlockSizes, commonCapabilities } from '../combine.js';
import { RangeLock } from '../../range-lock.js';
import { underRangeLock } from '../range-locked.js';
import { Replica, type ReplicaHold, type ReplicaSlot, type ReplicaState } from './replica.js';
import { ReadBalancer, type ReadPolicy } from './read-policy.js';
import { Resync, type ResyncHost, type ResyncProgress } from './resync.js';
import { bitmapPath, loadMirrorState, mirrorDirectory, mirrorFile, persistedState, restoredReplica, saveMirrorState, type PersistedMirror, type PersistedReplica } from './mirror-state.js';
import { ACTIVITY_LOG_DEFAULTS, ActivityLog, type ActivityLogOptions } from './activity-log.js';
import { spareProblem } from './spare-fit.js';
import { WriteOrder } from './write-order.js';

export interface MirrorOptions {
  readonly name: string;
  /** The replica set; all start in sync on a fresh data dir (like `mdadm --assume-clean`). */
  readonly replicas: readonly BlockDevice[];
  /** Hot spares (Alternates), which the set's controller promotes in place of a failed replica. */
  readonly spares?: readonly BlockDevice[];
  /** The member's data directory: state and bitmaps go under mirror/<name>/. */
  readonly dataDir: string;
  readonly readPolicy?: ReadPolicy;
  readonly resync?: {
    /** Resync throughput limit in MiB/s; 0 means unlimited. */
    readonly rateMiBps?: number;
    /** Bytes per dirty-bitmap bit. */
    readonly regionSize?: number;
    readonly logIntervalMs?: number;
  };
  /**
   * A new mirror copies its first reachable replica to the others (an initial sync), since
   * nothing says disks hold the same data; `assumeClean` says they do (fresh zeroed disks, a
   * copy made outside), as `mdadm --assume-clean` and DRBD's skip of the initial sync.
   */
  readonly assumeClean?: boolean;
  /**
   * The activity log (activity-log.ts): its extent size and how many extents stay logged.
   * `false` keeps none: after a crash every replica but one is then copied whole.
   */
  readonly activityLog?: Partial<ActivityLogOptions> | false;
  /**
   * Where states, bitmaps and the activity log are kept (under mirror/<name>/ of `dataDir`,
   * as names in the store); default: files in the data directory.
   */
  readonly metadata?: MetadataStore;
  /** The range lock to run writes and resync under (a device the mirror serves behind lends its own). */
  readonly rangeLock?: RangeLock;
}

export const MIRROR_DEFAULTS = {
  rateMiBps: 100,
  regionSize: 1024 * 1024,
  copyChunk: 1024 * 1024,
} as const;

/** One replica as the mirror sees it now. */
export interface ReplicaInfo {
  readonly name: string;
  readonly slot: ReplicaSlot;
  readonly state: ReplicaState;
  /** The replica the controller made Primary (reads under `readPolicy: primary`). */
  readonly primary: boolean;
  readonly dirtyBytes: number;
  readonly outstandingBytes: number;
  readonly readErrors: number;
  readonly writeErrors: number;
  readonly readRepairs: number;
  readonly lastError?: string;
}

export interface MirrorInfo {
  readonly state: DeviceState;
  readonly readPolicy: ReadPolicy;
  readonly replicas: readonly ReplicaInfo[];
  readonly resync: readonly ResyncProgress[];
  /** Current resync limit; 0 is unlimited. */
  readonly resyncRateMiBps: number;
  readonly bytesResynced: number;
  /** Bytes resyncs brought in sync without copying: holes of the source. */
  readonly bytesSkipped: number;
  readonly readRepairs: number;
  /** Times the mirror's own state (bitmaps, replica states) could not be read or written. */
  readonly metadataErrors: number;
  /** What is failing to be saved now, if anything: the device is degraded meanwhile. */
  readonly metadataFaults: readonly string[];
}

/** Errors that say the request was wrong, not that the replica is broken. */
const REQUEST_ERRORS = new Set(['EINVAL', 'ENOTSUP', 'EOVERFLOW', 'ENOSPC', 'EPERM']);
function isRequestError(err: unknown): boolean {
  return isBlockError(err) && REQUEST_ERRORS.has(err.code);
}

function returnTrue(): true {
  return true;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * An N-way mirror: the data path of a data-store failover set of replicas and hot spares.
 * Writes reach every in-sync replica before they are acknowledged; reads go to the
 * least-loaded in-sync replica and are repaired from another on a medium error. A replica
 * that misses a write (or cannot be reached) leaves the in-sync set while I/O goes on, its
 * missed writes recorded in a persisted dirty-region bitmap, so that only those regions are
 * copied when it comes back.
 *
 * The mirror decides nothing about time or policy. Its mechanism — fail, readmit, release,
 * probe, make primary, promote a spare, start or stop a resync, set the resync rate, add or
 * remove a spare, force a replica in sync — is driven by the set's controller
 * (failover/mirror-set.ts), which learns what happens from the events in fabric/events.ts.
 */
export class MirrorDevice implements BlockDevice {
  readonly name: string;
  readonly size: number;
  readonly blockSizes: BlockSizes;
  readonly capabilities: Capabilities;
  /**
   * The device's one range lock (fabric/range-lock.ts): host writes run under it, a resync
   * or read repair holds its range exclusively, and the switch lends it to the exports so
   * that SCSI COMPARE AND WRITE holds ranges in the same lock.
   */
  readonly rangeLock: RangeLock;
  readonly log: Logger;
  readonly readPolicy: ReadPolicy;

  /** Counters for operators and tests. */
  bytesResynced = 0;
  /** Bytes resyncs brought in sync without copying: holes of the source. */
  bytesSkipped = 0;
  readRepairs = 0;
  metadataErrors = 0;

  private readonly all: Replica[];
  /** Hot-path views, rebuilt on every state change so requests only read arrays. */
  private readable: Replica[] = [];
  private writeTargets: Replica[] = [];
  private writeInSync = 0;
  private away: Replica[] = [];
  private primary: Replica | undefined;

  private readonly balancer: ReadBalancer;
  private readonly dir: string;
  private readonly regionSize: number;
  private rate: number;
  private readonly logIntervalMs: number | undefined;
  private readonly stateSaver: SerialFlush;
  private readonly resyncs = new Map<Replica, { resync: Resync; done: Promise<void> }>();
  private readonly background = new Set<Promise<unknown>>();
  private readonly writeOrder = new WriteOrder();
  private readonly metadataFaults = new Map<string, string>();
  private readonly probeBuffer: Buffer;
  private activityLog: ActivityLog | undefined;
  private readonly metadata: MetadataStore;
  /** Extents a crash left logged that no in-sync replica could be found to repair from yet. */
  private unrepaired: number[] = [];
  private clean = false;
  private deviceState: DeviceState = 'optimal';
  private announced = false;
  private closing = false;

  private constructor(options: MirrorOptions, replicas: Replica[], dir: string) {
    this.name = options.name;
    this.rangeLock = options.rangeLock ?? new RangeLock();
    this.metadata = options.metadata ?? FILES;
    this.all = replicas;
    this.dir = dir;
    this.log = logger('mirror', { device: options.name });
    const devices = replicas.map((r) => r.device);
    this.blockSizes = commonBlockSizes(devices);
    this.capabilities = commonCapabilities(devices);
    const min = this.blockSizes.minimum;
    const replicaSize = Math.min(...options.replicas.map((d) => d.size));
    this.size = replicaSize - (replicaSize % min);
    for (const spare of options.spares ?? []) {
      if (spare.size < this.size) throw new BlockError('EINVAL', `spare ${spare.name} (${spare.size} bytes) is smaller than mirror ${this.name} (${this.size} bytes)`);
    }
    this.readPolicy = options.readPolicy ?? 'least-loaded';
    this.balancer = new ReadBalancer(this.readPolicy);
    this.regionSize = options.resync?.regionSize ?? MIRROR_DEFAULTS.regionSize;
    if (this.regionSize % min !== 0) throw new BlockError('EINVAL', `region size ${this.regionSize} is not a multiple of the block size ${min}`);
    checkBitmapGeometry(this.size, this.regionSize);
    this.rate = bytesPerSecond(options.resync?.rateMiBps ?? MIRROR_DEFAULTS.rateMiBps);
    this.logIntervalMs = options.resync?.logIntervalMs;
    this.stateSaver = new SerialFlush(() => saveMirrorState(this.dir, { version: 1, replicas: this.persisted(), clean: this.clean }, this.metadata));
    this.probeBuffer = Buffer.alloc(Math.min(Math.max(min, 4096), this.size));
    for (const r of replicas) this.trackUnflushed(r);
  }

  /**
   * Build a mirror, restoring replica states and bitmaps from its data dir. A replica whose
   * device cannot be reached now (a detached NBD client) starts failed, as md assembles an
   * array degraded: one it held in sync gets a clean bitmap that records what it misses.
   */
  static async open(options: MirrorOptions): Promise<MirrorDevice> {
    if (options.replicas.length < 2) throw new BlockError('EINVAL', 'a mirror needs at least 2 replicas');
    const names = new Set<string>();
    for (const d of [...options.replicas, ...(options.spares ?? [])]) {
      if (names.has(d.name)) throw new BlockError('EINVAL', `device ${d.name} appears twice in mirror ${options.name}`);
      names.add(d.name);
    }
    const dir = mirrorDirectory(options.dataDir, options.name);
    const saved = await loadMirrorState(dir, options.metadata);
    const byName = new Map<string, PersistedReplica>((saved?.replicas ?? []).map((p) => [p.name, p]));
    const replicas = [
      ...options.replicas.map((d) => restoredReplica(d, 'member', byName.get(d.name), saved !== undefined)),
      ...(options.spares ?? []).map((d) => restoredReplica(d, 'alternate', byName.get(d.name), saved !== undefined)),
    ];
    const mirror = new MirrorDevice(options, replicas, dir);
    try {
      await mirror.loadBitmaps();
      mirror.absentAtStart();
      if (!saved) mirror.initialSync(options.assumeClean === true);
      await mirror.openActivityLog(saved, options.activityLog);
      // Running (not clean) and the repairs recorded before the log forgets what it held.
      await mirror.saveState();
      await mirror.activityLog?.clearAll();
    } catch (err) {
      throw err instanceof BlockError ? err : new BlockError('EIO', `mirror ${options.name}: cannot restore state from ${dir}: ${String(err)}`, { cause: err });
    }
    mirror.primary = mirror.all.find((r) => r.slot === 'member' && r.state === 'in-sync');
    mirror.refresh('opened');
    return mirror;
  }

  // ---- I/O path ----

  async read(offset: number, target: Buffer): Promise<void> {
    const readable = this.readable;
    if (readable.length === 0 || this.closing) throw this.noReplica('read');
    const r = this.balancer.pick(readable, this.primary);
    const n = target.length;
    r.outstanding += n;
    try {
      await r.device.read(offset, target);
    } catch (err) {
      r.outstanding -= n;
      return this.readFromAnother(r, err, offset, target);
    }
    r.outstanding -= n;
  }

  write(offset: number, data: readonly Buffer[], options?: WriteOptions): Promise<void> {
    return this.mutate({ op: 'write', offset, data, options }, offset, totalLength(data));
  }

  trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.mutate({ op: 'trim', offset, length, options }, offset, length);
  }

  writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    return this.mutate({ op: 'writeZeroes', offset, length, options }, offset, length);
  }

  async flush(): Promise<void> {
    const targets = this.writeTargets;
    const tookOver = targets.map((r) => r.beginFlush());
    const covering = this.activityLog?.flushStarted();
    try {
      await this.fanOut({ op: 'flush' }, 0, 0);
      if (covering !== undefined) this.activityLog?.flushed(covering);
    } finally {
      targets.forEach((r, i) => r.endFlush(tookOver[i]!, r.state === 'in-sync' || r.state === 'resyncing'));
    }
  }

  blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.fromAnyReplica((d) => d.blockStatus(offset, length), 'block status');
  }

  cache(offset: number, length: number): Promise<void> {
    return this.fromAnyReplica((d) => d.cache(offset, length), 'cache');
  }

  private mutate(request: Exclude<MutatingRequest, { op: 'flush' }>, offset: number, length: number): Promise<void> {
    if (this.closing) return Promise.reject(new BlockError('ESHUTDOWN', `mirror ${this.name} is closing`));
    // Overlapping writes in flight reach every replica in one order (write-order.ts).
    return underRangeLock(this.rangeLock, offset, offset + length, request.options, () => this.writeOrder.run(offset, offset + length, async () => {
      // Its extent logged before any replica has it: a crash then resyncs just there.
      const al = this.activityLog;
      const logging = al?.enter(offset, length);
      try {
        if (logging) await this.guardMetadata('activity log', logging);
        // A replica that is away must learn of this write before any replica has it.
        if (this.away.length > 0) {
          const marked = this.markAway(offset, length);
          if (marked) await marked;
        }
        await this.fanOut(request, offset, length);
      } finally {
        al?.leave(offset, length);
      }
    }));
  }

  private async fanOut(request: MutatingRequest, offset: number, length: number): Promise<void> {
    const targets = this.writeTargets;
    const inSync = this.writeInSync;
    if (inSync === 0) throw this.noReplica(request.op);
    const track = request.op !== 'flush' && !request.options?.fua;
    if (targets.length === 1) {
      try {
        await issue(targets[0]!.device, request);
        if (track) this.noteWritten(targets[0]!, offset, length);
        return;
      } catch (err) {
        return this.afterFanOutErrors(request, offset, length, targets, inSync, [err]);
      }
    }
    const results = await Promise.all(targets.map((r) => issue(r.device, request).then(returnTrue, (err: unknown) => err)));
    let failed = false;
    for (let i = 0; i < results.length; i++) {
      if (results[i] !== true) failed = true;
      else if (track) this.noteWritten(targets[i]!, offset, length);
    }
    if (failed) return this.afterFanOutErrors(request, offset, length, targets, inSync, results);
  }

  private noteWritten(r: Replica, offset: number, length: number): void {
    r.noteWritten(Math.floor(offset / this.regionSize), Math.floor((offset + length - 1) / this.regionSize));
  }

  /** Some replicas failed a write: drop them from the set, or fail the request if none took it. */
  private async afterFanOutErrors(request: MutatingRequest, offset: number, length: number, targets: readonly Replica[], inSync: number, results: unknown[]): Promise<void> {
    // A fast zero one replica cannot do fast is done the slow way there, to keep copies equal.
    if (request.op === 'writeZeroes' && request.options?.fastOnly && results.some((r) => r === true)) {
      const slow = { ...request, options: { ...request.options, fastOnly: false } };
      await Promise.all(
        results.map(async (result, i) => {
          if (isBlockError(result) && result.code === 'ENOTSUP') {
            results[i] = await issue(targets[i]!.device, slow).then(returnTrue, (err: unknown) => err);
            if (results[i] === true && !slow.options.fua) this.noteWritten(targets[i]!, offset, length);
          }
        }),
      );
    }
    let tookIt = 0;
    let firstError: unknown;
    for (let i = 0; i < results.length; i++) {
      if (results[i] === true) {
        if (i < inSync) tookIt++;
      } else firstError ??= results[i];
    }
    if (firstError === undefined) return;
    if (tookIt === 0 && results.every((r) => r === true || isRequestError(r))) throw firstError;
    await Promise.all(results.map((result, i) => (result === true ? undefined : this.replicaFault(targets[i]!, result, request.op, offset, length, true))));
    if (tookIt === 0) {
      throw new BlockError('EIO', `mirror ${this.name}: no in-sync replica completed the ${request.op}`, { cause: firstError });
    }
  }

  /** Mark the range in the bitmap of every member that is away; a promise if a bit flipped. */
  private markAway(offset: number, length: number): Promise<unknown> | undefined {
    let pending: Promise<void>[] | undefined;
    for (const r of this.away) {
      const p = r.bitmap?.mark(offset, length);
      if (p) (pending ??= []).push(this.guardMetadata(`bitmap of ${r.name}`, p));
    }
    return pending && (pending.length === 1 ? pending[0] : Promise.all(pending));
  }

  /**
   * A replica failed a read. A medium error is answered from another replica and the bad
   * copy rewritten from a good one; a replica that cannot be reached leaves the set.
   */
  private async readFromAnother(bad: Replica, err: unknown, offset: number, target: Buffer): Promise<void> {
    if (isRequestError(err)) throw err;
    const unreachable = isTransportError(err);
    await this.replicaFault(bad, err, 'read', offset, target.length, unreachable);
    for (const good of this.readable) {
      if (good === bad) continue;
      good.outstanding += target.length;
      try {
        await good.device.read(offset, target);
      } catch (again) {
        await this.replicaFault(good, again, 'read', offset, target.length, isTransportError(again));
        continue;
      } finally {
        good.outstanding -= target.length;
      }
      if (!unreachable && bad.slot === 'member' && bad.state === 'in-sync') this.track(this.repair(bad, offset, target.length));
      return;
    }
    throw new BlockError('EIO', `mirror ${this.name}: no replica could read ${target.length} bytes at ${offset}`, { cause: err });
  }

  /** Rewrite a bad copy from a good one, holding the range so no host write races it. */
  private async repair(bad: Replica, offset: number, length: number): Promise<void> {
    const hold = await this.rangeLock.exclusive(offset, offset + length);
    try {
      const source = this.readable.find((r) => r !== bad);
      if (!source || bad.state !== 'in-sync') return;
      const buffer = Buffer.allocUnsafe(length);
      try {
        await source.device.read(offset, buffer);
      } catch (err) {
        await this.replicaFault(source, err, 'read', offset, length, isTransportError(err));
        return;
      }
      // A rewrite cut short by a crash could leave the copies different: log it like a host write.
      const logging = this.activityLog?.enter(offset, length);
      try {
        if (logging) await this.guardMetadata('activity log', logging);
        await bad.device.write(offset, [buffer]);
      } catch (err) {
        await this.replicaFault(bad, err, 'write', offset, length, true);
        return;
      } finally {
        this.activityLog?.leave(offset, length);
      }
      this.readRepairs++;
      bad.readRepairs++;
      this.log.warn({ replica: bad.name, from: source.name, offset, length }, 'read error repaired from another replica');
    } finally {
      hold.release();
    }
  }

  private async fromAnyReplica<T>(call: (device: BlockDevice) => Promise<T>, what: string): Promise<T> {
    const readable = this.readable;
    if (readable.length === 0) throw this.noReplica(what);
    const first = this.balancer.pick(readable, this.primary);
    let firstError: unknown;
    for (const r of [first, ...readable.filter((x) => x !== first)]) {
      try {
        return await call(r.device);
      } catch (err) {
        if (isRequestError(err)) throw err;
        firstError ??= err;
      }
    }
    throw new BlockError('EIO', `mirror ${this.name}: ${what} failed on every replica`, { cause: firstError });
  }

  private noReplica(what: string): BlockError {
    if (this.closing) return new BlockError('ESHUTDOWN', `mirror ${this.name} is closing`);
    return new BlockError('EIO', `mirror ${this.name} has no in-sync replica for ${what}`);
  }

  /**
   * A replica failed an operation: counted, told to the controller, and with `drop` taken out
   * of the in-sync set after recording [offset, offset+length) as missed. The last in-sync
   * replica is never dropped: there would be nothing left to read or to resync from.
   */
  private async replicaFault(r: Replica, err: unknown, op: Operation, offset: number, length: number, drop: boolean): Promise<void> {
    if (this.closing) return;
    if (op === 'read') r.readErrors++;
    else r.writeErrors++;
    const message = messageOf(err);
    r.lastError = message;
    // Requests in flight when a replica went out fail too: one failure, not many.
    const alreadyOut = r.down;
    let takenOut: Promise<void> | undefined;
    if (drop && !alreadyOut) {
      // A read it failed is not a write it missed: nothing to mark but what its cache held.
      if (!this.isLastInSync(r)) takenOut = this.takeOut(r, 'failed', message, op === 'read' ? 0 : offset, op === 'read' ? 0 : length);
      else this.log.error({ replica: r.name, op, err: message }, 'the last in-sync replica failed; keeping it in the set');
    }
    fabricEvents.ioError.publish({
      device: this,
      name: this.name,
      member: r.name,
      op,
      code: isBlockError(err) ? err.code : 'unknown',
      transport: isTransportError(err),
      alreadyOut,
      message,
    });
    await takenOut;
  }

  /** Move a replica out of service, recording what it misses from now on (and may have lost). */
  private async takeOut(r: Replica, state: 'failed' | ReplicaHold, reason: string, offset = 0, length = 0): Promise<void> {
    const pending: Promise<unknown>[] = [];
    if (r.slot === 'member') {
      r.bitmap ??= DirtyBitmap.create(bitmapPath(this.dir, r.name), this.geometry(), 'clean', this.metadata);
      const marked = length > 0 ? r.bitmap.mark(offset, length) : r.bitmap.persist();
      if (marked) pending.push(this.guardMetadata(`bitmap of ${r.name}`, marked));
      const lost = r.bitmap.markRegions(r.takeUnflushed());
      if (lost) pending.push(this.guardMetadata(`bitmap of ${r.name}`, lost));
    }
    this.stopResync(r);
    this.setState(r, state, reason);
    pending.push(this.saveState());
    await Promise.all(pending);
  }

  // ---- mechanism, for the set's controller ----

  /**
   * Take a replica out of service: `failed` (a probe may readmit it) or held `quarantined` or
   * `offline` (only release() lets it out). Refused for the last in-sync replica.
   */
  async fail(name: string, reason: string, hold?: ReplicaHold): Promise<void> {
    const r = this.replica(name);
    const to = hold ?? 'failed';
    if (r.state === to || (to === 'failed' && r.down)) return;
    if (this.isLastInSync(r)) throw new BlockError('EPERM', `replica ${r.name} is the last in-sync replica of mirror ${this.name}: taking it out would leave nothing to read`);
    await this.takeOut(r, to, reason);
  }

  /**
   * A failed replica is back: a member becomes stale (its resync is the controller's call),
   * a spare stands by. A member's saved state does not change (failed and stale are both
   * saved as stale, its bitmap holding the rest); a spare's does.
   */
  async readmit(name: string, reason: string): Promise<void> {
    const r = this.replica(name);
    if (r.held) throw new BlockError('EPERM', `replica ${r.name} is ${r.state}: release it first`);
    if (r.state !== 'failed') return;
    if (r.slot === 'alternate') {
      this.setState(r, 'standby', reason);
      await this.saveState();
      return;
    }
    r.bitmap ??= DirtyBitmap.create(bitmapPath(this.dir, r.name), this.geometry(), 'dirty', this.metadata);
    this.setState(r, 'stale', reason);
  }

  /** Lift a hold (quarantine, offline): the replica is failed, to be readmitted once it answers. */
  async release(name: string, reason: string): Promise<void> {
    const r = this.replica(name);
    if (!r.held) return;
    this.setState(r, 'failed', reason);
    await this.saveState();
  }

  /** A small read of the replica's device: resolves if it answers. */
  async probe(name: string): Promise<void> {
    const r = this.replica(name);
    await r.device.read(0, this.probeBuffer);
  }

  /** The replica `readPolicy: primary` reads from and roles report; undefined lets the mirror choose. */
  setPrimary(name: string | undefined): void {
    this.primary = name === undefined ? undefined : this.replica(name);
  }

  /** Put standby spare `spareName` in the replica set in place of out-of-service member `replaces`. */
  async promoteSpare(spareName: string, replaces: string): Promise<void> {
    const spare = this.replica(spareName);
    const member = this.replica(replaces);
    if (spare.slot !== 'alternate' || spare.state !== 'standby') throw new BlockError('EPERM', `${spare.name} is not a standby spare of mirror ${this.name}`);
    if (member.slot !== 'member' || !member.down) throw new BlockError('EPERM', `${member.name} is not an out-of-service replica of mirror ${this.name}`);
    spare.slot = 'member';
    spare.bitmap = DirtyBitmap.create(bitmapPath(this.dir, spare.name), this.geometry(), 'dirty', this.metadata);
    member.slot = 'alternate';
    const oldBitmap = member.bitmap;
    member.bitmap = undefined;
    if (oldBitmap) this.track(this.removeBitmap(member.name, oldBitmap));
    this.log.warn({ spare: spare.name, replaces: member.name }, `spare ${spare.name} promoted in place of ${member.name}`);
    this.setState(spare, 'stale', `promoted in place of ${member.name}`);
    await this.saveState();
  }

  /**
   * Begin copying a stale member's dirty regions from an in-sync replica. False when it cannot
   * start (not stale, one running, nothing to copy from). The replica's state is saved before
   * the first copy.
   */
  startResync(name: string): boolean {
    const r = this.replica(name);
    if (this.closing || this.resyncs.has(r) || r.slot !== 'member' || !r.bitmap || r.state !== 'stale') return false;
    if (this.readable.length === 0) {
      this.log.warn({ replica: r.name }, 'no in-sync replica to resync from');
      return false;
    }
    const host: ResyncHost = {
      lock: this.rangeLock,
      log: this.log,
      pickSource: () => (this.readable.length ? this.balancer.pick(this.readable, this.primary) : undefined),
      sourceFailed: (source, err, offset, length) => this.replicaFault(source, err, 'read', offset, length, true),
      copied: (bytes) => {
        this.bytesResynced += bytes;
      },
      skipped: (bytes) => {
        this.bytesSkipped += bytes;
      },
      progressed: (progress) => fabricEvents.resyncProgress.publish({ device: this, name: this.name, progress }),
      metadataFault: (what, err) => this.metadataFault(what, err),
    };
    const chunk = Math.min(MIRROR_DEFAULTS.copyChunk, this.blockSizes.maximum);
    const resync = new Resync(host, r, { rate: this.rate, chunk, logIntervalMs: this.logIntervalMs });
    this.setState(r, 'resyncing', `resync of ${r.bitmap.dirtyRegions} dirty regions (${r.bitmap.dirtyBytes} bytes) started`);
    // A state that cannot be saved is surfaced by saveState; the copy is worth doing anyway.
    const done = this.saveState()
      .catch(() => undefined)
      .then(() => resync.run())
      .then(
        (outcome) => this.resyncEnded(r, resync, outcome),
        (err: unknown) => this.resyncEnded(r, resync, 'target-failed', err),
      );
    this.resyncs.set(r, { resync, done });
    return true;
  }

  stopResync(name: string | Replica): void {
    const r = typeof name === 'string' ? this.replica(name) : name;
    this.resyncs.get(r)?.resync.stop();
  }

  /** The resync limit in MiB/s (0: unlimited), applied to running resyncs at once. */
  setResyncRate(rateMiBps: number): void {
    if (!(rateMiBps >= 0) || !Number.isFinite(rateMiBps)) throw new BlockError('EINVAL', `resync rate must be a number of MiB/s ≥ 0 (got ${rateMiBps})`);
    this.rate = bytesPerSecond(rateMiBps);
    for (const { resync } of this.resyncs.values()) resync.setRate(this.rate);
    this.log.info({ rateMiBps }, 'resync rate changed');
  }

  /** Add `device` as a hot spare; refused with the reason when it cannot stand in for a replica. */
  async addSpare(device: BlockDevice): Promise<void> {
    if (this.all.some((r) => r.name === device.name)) throw new BlockError('EPERM', `${device.name} is already part of mirror ${this.name}`);
    const problem = spareProblem(device, this);
    if (problem) throw new BlockError('EPERM', `${device.name} cannot be a spare of mirror ${this.name}: ${problem}`);
    const spare = new Replica(device, 'alternate', device.status().state === 'failed' ? 'failed' : 'standby');
    this.trackUnflushed(spare);
    this.all.push(spare);
    this.log.info({ spare: spare.name, state: spare.state }, `spare ${spare.name} added`);
    this.refresh(`spare ${spare.name} added`);
    await this.saveState();
  }

  /** Remove a spare (not a member of the replica set); the device is left open for its owner. */
  async removeSpare(name: string): Promise<BlockDevice> {
    const r = this.replica(name);
    if (r.slot !== 'alternate') throw new BlockError('EPERM', `${r.name} is a replica of mirror ${this.name}, not a spare`);
    this.all.splice(this.all.indexOf(r), 1);
    this.log.info({ spare: r.name }, `spare ${r.name} removed`);
    this.refresh(`spare ${r.name} removed`);
    await this.saveState();
    return r.device;
  }

  /**
   * Declare member `name` in sync without copying, when no replica is (md's `--run --force`):
   * its data becomes the mirror's. Every other member must then take whatever `name` lacked
   * too, so its dirty regions join theirs.
   */
  async forceInSync(name: string, reason: string): Promise<void> {
    const r = this.replica(name);
    if (this.readable.length > 0) throw new BlockError('EPERM', `mirror ${this.name} has an in-sync replica (${this.readable[0]!.name})`);
    if (r.slot !== 'member' || r.held) throw new BlockError('EPERM', `${r.name} is ${r.slot === 'member' ? r.state : 'a spare'}`);
    this.stopResync(r);
    const lacked = r.bitmap;
    const pending: Promise<unknown>[] = [];
    if (this.unrepaired.length > 0) {
      // A crash left extents that may differ: the others copy them from r too.
      const extents = this.unrepaired;
      this.unrepaired = [];
      for (const other of this.all) {
        if (other === r || other.slot !== 'member') continue;
        other.bitmap ??= DirtyBitmap.create(bitmapPath(this.dir, other.name), this.geometry(), 'clean', this.metadata);
        for (const x of extents) {
          const size = this.activityLog?.extentSize ?? this.size;
          const marked = other.bitmap.mark(x * size, Math.min(size, this.size - x * size));
          if (marked) pending.push(this.guardMetadata(`bitmap of ${other.name}`, marked));
        }
      }
    }
    if (lacked) {
      const regions = [...regionsOf(lacked)];
      for (const other of this.all) {
        if (other === r || other.slot !== 'member' || !other.bitmap) continue;
        const marked = other.bitmap.markRegions(regions);
        if (marked) pending.push(this.guardMetadata(`bitmap of ${other.name}`, marked));
      }
    }
    r.bitmap = undefined;
    this.log.warn({ replica: r.name, lackedBytes: lacked?.dirtyBytes ?? 0 }, `replica ${r.name} forced in sync: its data is now the mirror's`);
    this.setState(r, 'in-sync', reason);
    pending.push(this.saveState());
    await Promise.all(pending);
    if (lacked) await this.removeBitmap(r.name, lacked);
  }

  /** Resolves once no resync is running (tests and orderly maintenance). */
  async resyncIdle(): Promise<void> {
    while (this.resyncs.size > 0) await Promise.all([...this.resyncs.values()].map((x) => x.done));
  }

  /** Resolves once background work (repairs, state saves) has finished. */
  async settled(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  // ---- status and lifecycle ----

  info(): MirrorInfo {
    return {
      state: this.deviceState,
      readPolicy: this.readPolicy,
      replicas: this.all.map((r) => ({
        name: r.name,
        slot: r.slot,
        state: r.state,
        primary: r === this.primary,
        dirtyBytes: r.bitmap?.dirtyBytes ?? 0,
        outstandingBytes: r.outstanding,
        readErrors: r.readErrors,
        writeErrors: r.writeErrors,
        readRepairs: r.readRepairs,
        ...(r.lastError !== undefined && { lastError: r.lastError }),
      })),
      // A resync stays in `resyncs` while its wrap-up saves state: by then its replica is in
      // sync, and listing it would show a progress bar beside an optimal mirror.
      resync: [...this.resyncs].filter(([r]) => r.state === 'resyncing').map(([, x]) => x.resync.progress()),
      resyncRateMiBps: this.rate === 0 ? 0 : this.rate / 2 ** 20,
      bytesResynced: this.bytesResynced,
      bytesSkipped: this.bytesSkipped,
      readRepairs: this.readRepairs,
      metadataErrors: this.metadataErrors,
      metadataFaults: [...this.metadataFaults.keys()],
    };
  }

  status(): DeviceStatus {
    return { state: this.deviceState };
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const { resync } of this.resyncs.values()) resync.stop();
    await Promise.allSettled([...this.resyncs.values()].map((x) => x.done));
    await this.settled();
    await this.stopCleanly();
    await this.stateSaver.request().catch((err: unknown) => this.log.error({ err: messageOf(err) }, 'could not save mirror state'));
    await this.activityLog?.close().catch(() => undefined);
    await Promise.allSettled(this.all.map((r) => r.bitmap?.persist().then(() => r.bitmap?.close())));
    await Promise.allSettled(this.all.map((r) => r.device.close()));
    this.log.info('mirror closed');
  }

  // ---- internals ----

  private setState(r: Replica, state: ReplicaState, reason: string): void {
    const from = r.state;
    if (from === state) return;
    r.state = state;
    const level = r.down ? 'warn' : 'info';
    this.log[level]({ replica: r.name, from, to: state, reason }, `replica ${r.name} is now ${state}`);
    this.refresh(reason);
    fabricEvents.replicaState.publish({ device: this, name: this.name, replica: r.name, slot: r.slot, from, to: state, reason });
  }

  /** Rebuild the hot-path views and tell a change of the device's state. */
  private refresh(reason: string): void {
    const members = this.all.filter((r) => r.slot === 'member');
    this.readable = members.filter((r) => r.state === 'in-sync');
    const resyncing = members.filter((r) => r.state === 'resyncing');
    this.writeTargets = [...this.readable, ...resyncing];
    this.writeInSync = this.readable.length;
    this.away = members.filter((r) => r.state !== 'in-sync' && r.state !== 'resyncing');
    let state: DeviceState =
      this.readable.length === 0 ? 'failed' : resyncing.length > 0 ? 'rebuilding' : this.readable.length < members.length ? 'degraded' : 'optimal';
    if (state === 'optimal' && this.metadataFaults.size > 0) state = 'degraded';
    if (!this.announced) {
      this.announced = true;
      this.deviceState = state;
      this.log.info({ state, replicas: this.replicaSummary() }, `mirror ${this.name} opened: ${state}`);
    } else if (state !== this.deviceState) {
      const from = this.deviceState;
      this.deviceState = state;
      const level = state === 'optimal' ? 'info' : state === 'failed' ? 'error' : 'warn';
      this.log[level]({ from, to: state, reason, replicas: this.replicaSummary() }, `mirror ${this.name} is ${state}`);
      fabricEvents.deviceState.publish({ device: this, name: this.name, from, to: state, reason });
    }
  }

  /** Wrap-up of a resync; it stays listed until done, so resyncIdle() covers it. */
  private async resyncEnded(r: Replica, resync: Resync, outcome: 'done' | 'stopped' | 'target-failed' | 'no-source', err?: unknown): Promise<void> {
    try {
      await this.afterResync(r, resync, outcome, err);
    } finally {
      if (this.resyncs.get(r)?.resync === resync) this.resyncs.delete(r);
    }
  }

  private async afterResync(r: Replica, resync: Resync, outcome: 'done' | 'stopped' | 'target-failed' | 'no-source', err?: unknown): Promise<void> {
    const progress = resync.progress();
    fabricEvents.resyncEnd.publish({ device: this, name: this.name, replica: r.name, outcome, bytesCopied: progress.bytesCopied });
    if (this.closing || r.state !== 'resyncing') return;
    if (outcome === 'done') {
      this.setState(r, 'in-sync', `resync complete: ${progress.bytesCopied} bytes copied`);
      const bitmap = r.bitmap;
      r.bitmap = undefined;
      await this.saveState();
      if (bitmap) await this.removeBitmap(r.name, bitmap);
    } else if (outcome === 'target-failed') {
      await this.replicaFault(r, err ?? resync.targetError, 'write', 0, 0, true);
    } else {
      this.setState(r, 'stale', outcome === 'no-source' ? 'resync paused: no in-sync replica to copy from' : 'resync stopped');
    }
  }

  /**
   * The mirror's own state on disk failed to be written or read: the device is degraded (it
   * may not know after a restart what to copy) until a later write of the same thing works.
   */
  private metadataFault(what: string, err: unknown): void {
    this.metadataErrors++;
    const message = messageOf(err);
    this.metadataFaults.set(what, message);
    this.log.error({ what, err: message }, `mirror ${this.name} cannot keep its ${what}`);
    fabricEvents.metadataError.publish({ device: this, name: this.name, what, message });
    this.refresh(`${what}: ${message}`);
  }

  /** Surface a failure of `persisted` as a metadata fault (and let it reject); a success clears one. */
  private guardMetadata(what: string, persisted: Promise<void>): Promise<void> {
    return persisted.then(
      () => {
        if (this.metadataFaults.delete(what)) this.refresh(`${what} saved again`);
      },
      (err: unknown) => {
        this.metadataFault(what, err);
        throw err;
      },
    );
  }

  /**
   * A replica's bitmap is no longer needed (in sync, or no longer a member): delete its file.
   * A fault about saving it is moot from then on; failing to delete it is one more fault.
   */
  private async removeBitmap(name: string, bitmap: DirtyBitmap): Promise<void> {
    const what = `bitmap of ${name}`;
    try {
      await bitmap.remove();
    } catch (err) {
      this.metadataFault(what, err);
      return;
    }
    if (this.metadataFaults.delete(what)) this.refresh(`${what} no longer needed`);
  }

  private isLastInSync(r: Replica): boolean {
    return r.state === 'in-sync' && r.slot === 'member' && this.readable.length === 1 && this.readable[0] === r;
  }

  private trackUnflushed(r: Replica): void {
    if (this.capabilities.flush) r.trackUnflushed(() => new RegionBits(Math.ceil(this.size / this.regionSize)));
  }

  private replica(name: string): Replica {
    const r = this.all.find((x) => x.name === name);
    if (!r) throw new BlockError('EINVAL', `mirror ${this.name} has no replica ${name}`);
    return r;
  }

  private replicaSummary(): Record<string, string> {
    return Object.fromEntries(this.all.map((r) => [r.name, `${r.slot}/${r.state}`]));
  }

  private geometry() {
    return { deviceSize: this.size, regionSize: this.regionSize };
  }

  private persisted(): PersistedReplica[] {
    return this.all.map((r) => ({ name: r.name, slot: r.slot, state: persistedState(r.slot, r.state) }));
  }

  private saveState(): Promise<void> {
    return this.guardMetadata('replica states', this.stateSaver.request());
  }

  /**
   * A new mirror: replicas are not known to hold the same data, so all but the first one
   * that can be reached are copied from it (holes skipped), unless `assumeClean`.
   */
  private initialSync(assumeClean: boolean): void {
    const members = this.all.filter((r) => r.slot === 'member');
    const source = members.find((r) => r.state === 'in-sync');
    if (assumeClean || !source) {
      if (assumeClean) this.log.info('new mirror: replicas assumed identical (assumeClean)');
      return;
    }
    for (const r of members) {
      if (r === source || r.held) continue;
      r.bitmap = DirtyBitmap.create(bitmapPath(this.dir, r.name), this.geometry(), 'dirty', this.metadata);
      if (r.state === 'in-sync') r.state = 'stale';
    }
    this.log.info({ source: source.name }, `new mirror: initial sync from ${source.name}`);
  }

  /**
   * Open the activity log and repair what an unclean stop may have left different: the
   * extents it logged (all of them with no usable log) are copied from one in-sync replica
   * to every other member. The state is then saved as running (not clean).
   */
  private async openActivityLog(saved: PersistedMirror | undefined, option: Partial<ActivityLogOptions> | false | undefined): Promise<void> {
    const extentSize = option === false ? undefined : Math.max(option?.extentSize ?? ACTIVITY_LOG_DEFAULTS.extentSize, this.regionSize);
    let crashed: number[] | 'all' = [];
    const unclean = saved !== undefined && saved.clean === false;
    if (option !== false) {
      const options = { extentSize: extentSize!, extents: option?.extents ?? ACTIVITY_LOG_DEFAULTS.extents };
      const volatile = this.capabilities.flush;
      const opened = await ActivityLog.open(mirrorFile(this.dir, 'activity.log'), this.size, options, {
        volatile,
        askFlush: () => this.track(this.flush()),
      }, this.metadata);
      this.activityLog = opened.log;
      if (unclean) {
        if (opened.problem) this.metadataFault('activity log', opened.problem);
        crashed = opened.found ? opened.logged : 'all';
      }
    } else if (unclean) crashed = 'all';
    if (crashed === 'all' || crashed.length > 0) {
      const extents = crashed === 'all' ? Array.from({ length: Math.ceil(this.size / (extentSize ?? this.size)) }, (_, i) => i) : crashed;
      this.log.warn({ extents: extents.length, extentSize: extentSize ?? this.size }, 'the mirror was not stopped cleanly: resyncing what writes in flight may have left different');
      await this.repairCrash(extents, extentSize ?? this.size);
    }
    this.clean = false;
  }

  /** Copy `extents` from one in-sync replica to every other member (via their bitmaps). */
  private async repairCrash(extents: readonly number[], extentSize: number): Promise<void> {
    const members = this.all.filter((r) => r.slot === 'member');
    const source = members.find((r) => r.state === 'in-sync');
    if (!source) {
      // Nothing to copy from until an operator forces a replica in sync.
      this.unrepaired = [...extents];
      return;
    }
    const pending: Promise<unknown>[] = [];
    for (const r of members) {
      if (r === source) continue;
      if (r.state === 'in-sync') r.state = 'stale';
      r.bitmap ??= DirtyBitmap.create(bitmapPath(this.dir, r.name), this.geometry(), 'clean', this.metadata);
      for (const x of extents) {
        const offset = x * extentSize;
        const marked = r.bitmap.mark(offset, Math.min(extentSize, this.size - offset));
        if (marked) pending.push(marked);
      }
      const saved = r.bitmap.persist();
      pending.push(saved);
    }
    await Promise.all(pending);
  }

  /**
   * Before closing: flush every replica, then empty the activity log and say the stop was
   * clean. If any replica fails its flush, the log stays for the next start to repair from.
   */
  private async stopCleanly(): Promise<void> {
    try {
      if (this.capabilities.flush) await Promise.all(this.writeTargets.map((r) => r.device.flush()));
      await this.activityLog?.clearAll();
      this.clean = true;
    } catch (err) {
      this.log.warn({ err: messageOf(err) }, 'mirror not stopped cleanly: the next start resyncs what the activity log holds');
    }
  }

  private async loadBitmaps(): Promise<void> {
    for (const r of this.all) {
      if (r.slot !== 'member' || r.state === 'in-sync') continue;
      const { bitmap, found, problem } = await DirtyBitmap.load(bitmapPath(this.dir, r.name), this.geometry(), this.metadata);
      r.bitmap = bitmap;
      this.log.info({ replica: r.name, state: r.state, dirtyBytes: bitmap.dirtyBytes, bitmapFound: found }, 'restored replica bitmap');
      // Not knowing what changed means copying everything, which is safe; but a bitmap that
      // cannot be read says the data directory is failing, and that must not pass unseen.
      if (problem) {
        this.metadataFault(`bitmap of ${r.name}`, problem);
        this.track(this.guardMetadata(`bitmap of ${r.name}`, bitmap.persist()));
      }
    }
  }

  /** Replicas whose device cannot be reached now start failed (see open()). */
  private absentAtStart(): void {
    for (const r of this.all) {
      if (r.held || r.device.status().state !== 'failed') continue;
      if (r.slot === 'member' && r.state === 'in-sync') r.bitmap = DirtyBitmap.create(bitmapPath(this.dir, r.name), this.geometry(), 'clean', this.metadata);
      this.log.warn({ replica: r.name, was: r.state }, `replica ${r.name} cannot be reached: the mirror starts without it`);
      r.state = 'failed';
    }
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.catch((err: unknown) => this.log.error({ err: messageOf(err) }, 'mirror background task failed'));
    this.background.add(tracked);
    void tracked.finally(() => this.background.delete(tracked));
  }
}

function bytesPerSecond(rateMiBps: number): number {
  return rateMiBps > 0 ? rateMiBps * 2 ** 20 : 0;
}

function* regionsOf(bitmap: DirtyBitmap): Generator<number> {
  for (let r = bitmap.nextDirty(0); r >= 0; r = bitmap.nextDirty(r + 1)) yield r;
}
