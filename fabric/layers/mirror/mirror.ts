import type {
  BlockDevice,
  BlockSizes,
  Capabilities,
  DeviceState,
  DeviceStatus,
  Extent,
  WriteOptions,
  ZeroOptions,
} from '../../device.js';
import { totalLength } from '../../device.js';
import { BlockError, isBlockError } from '../../errors.js';
import { logger, type Logger } from '../../log.js';
import { checkBitmapGeometry } from '../../bitmap/limits.js';
import { DirtyBitmap } from '../../bitmap/dirty-bitmap.js';
import { SerialFlush } from '../../bitmap/serial-flush.js';
import { RegionBits } from '../../bitmap/region-bits.js';
import { commonBlockSizes, commonCapabilities } from '../combine.js';
import { RegionGate, type Range } from './region-gate.js';
import { Replica, type FailureLimit, type ReplicaRole, type ReplicaState } from './replica.js';
import { ReadBalancer, type ReadPolicy } from './read-policy.js';
import { Resync, type ResyncHost } from './resync.js';
import {
  bitmapPath,
  loadMirrorState,
  mirrorDirectory,
  persistedState,
  restoredReplica,
  saveMirrorState,
  type PersistedReplica,
} from './mirror-state.js';

export interface MirrorOptions {
  readonly name: string;
  /** The replica set; all start in sync on a fresh data dir (like `mdadm --assume-clean`). */
  readonly replicas: readonly BlockDevice[];
  /** Hot spares (Alternates), promoted and rebuilt when a replica fails. */
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
  readonly failureLimit?: FailureLimit;
  /** How often failed replicas are probed for their return; 0 disables probing. */
  readonly probeIntervalMs?: number;
}

export const MIRROR_DEFAULTS = {
  rateMiBps: 100,
  regionSize: 1024 * 1024,
  failureLimit: { failures: 5, windowMs: 10 * 60 * 1000 },
  probeIntervalMs: 2000,
  copyChunk: 1024 * 1024,
} as const;

type MutatingOp = 'write' | 'trim' | 'zero' | 'flush';

/** Errors that say the request was wrong, not that the replica is broken. */
const REQUEST_ERRORS = new Set(['EINVAL', 'ENOTSUP', 'EOVERFLOW', 'ENOSPC', 'EPERM']);
function isRequestError(err: unknown): boolean {
  return isBlockError(err) && REQUEST_ERRORS.has(err.code);
}

function returnTrue(): true {
  return true;
}

/**
 * An N-way mirror: a data-store failover set of replicas (Primary, Secondaries) and hot
 * spares (Alternates). Writes reach every in-sync replica before they are acknowledged;
 * reads go to the least-loaded in-sync replica and are repaired from another on error. A
 * replica that fails is dropped from the set while I/O goes on, its missed writes recorded in
 * a persisted dirty-region bitmap; when it returns (probe or operator) only those regions are
 * copied back. A spare, when there is one, replaces a failed replica with a full rebuild.
 */
export class MirrorDevice implements BlockDevice {
  readonly name: string;
  readonly size: number;
  readonly blockSizes: BlockSizes;
  readonly capabilities: Capabilities;
  readonly gate = new RegionGate();
  readonly log: Logger;

  /** Counters for operators and tests. */
  bytesResynced = 0;
  readRepairs = 0;

  private readonly all: Replica[];
  /** Hot-path views, rebuilt on every state change so requests only read arrays. */
  private readable: Replica[] = [];
  private writeTargets: Replica[] = [];
  private writeInSync = 0;
  private away: Replica[] = [];

  private readonly balancer: ReadBalancer;
  private readonly dir: string;
  private readonly regionSize: number;
  private readonly rate: number;
  private readonly logIntervalMs: number | undefined;
  private readonly failureLimit: FailureLimit;
  private readonly stateSaver: SerialFlush;
  private readonly resyncs = new Map<Replica, { resync: Resync; done: Promise<void> }>();
  private readonly background = new Set<Promise<unknown>>();
  private probeTimer: NodeJS.Timeout | undefined;
  private probing = false;
  private probeBuffer: Buffer;
  private deviceState: DeviceState = 'optimal';
  private announced = false;
  private closing = false;

  private constructor(options: MirrorOptions, replicas: Replica[], dir: string) {
    this.name = options.name;
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
    this.balancer = new ReadBalancer(options.readPolicy ?? 'least-loaded');
    this.regionSize = options.resync?.regionSize ?? MIRROR_DEFAULTS.regionSize;
    if (this.regionSize % min !== 0) throw new BlockError('EINVAL', `region size ${this.regionSize} is not a multiple of the block size ${min}`);
    checkBitmapGeometry(this.size, this.regionSize);
    const mib = options.resync?.rateMiBps ?? MIRROR_DEFAULTS.rateMiBps;
    this.rate = mib > 0 ? mib * 2 ** 20 : 0;
    this.logIntervalMs = options.resync?.logIntervalMs;
    this.failureLimit = options.failureLimit ?? MIRROR_DEFAULTS.failureLimit;
    this.stateSaver = new SerialFlush(() => saveMirrorState(this.dir, { version: 1, replicas: this.persisted() }));
    this.probeBuffer = Buffer.alloc(Math.min(Math.max(min, 4096), this.size));
    if (this.capabilities.flush) {
      const regions = Math.ceil(this.size / this.regionSize);
      for (const r of replicas) r.trackUnflushed(() => new RegionBits(regions));
    }
  }

  /** Build a mirror, restoring replica states and bitmaps from its data dir. */
  static async open(options: MirrorOptions): Promise<MirrorDevice> {
    if (options.replicas.length < 2) throw new BlockError('EINVAL', 'a mirror needs at least 2 replicas');
    const names = new Set<string>();
    for (const d of [...options.replicas, ...(options.spares ?? [])]) {
      if (names.has(d.name)) throw new BlockError('EINVAL', `device ${d.name} appears twice in mirror ${options.name}`);
      names.add(d.name);
    }
    const dir = mirrorDirectory(options.dataDir, options.name);
    const saved = await loadMirrorState(dir);
    const byName = new Map<string, PersistedReplica>((saved?.replicas ?? []).map((p) => [p.name, p]));
    const replicas = [
      ...options.replicas.map((d) => restoredReplica(d, 'member', byName.get(d.name), saved !== undefined)),
      ...(options.spares ?? []).map((d) => restoredReplica(d, 'alternate', byName.get(d.name), saved !== undefined)),
    ];
    const mirror = new MirrorDevice(options, replicas, dir);
    try {
      await mirror.loadBitmaps();
      await mirror.saveState();
    } catch (err) {
      throw err instanceof BlockError ? err : new BlockError('EIO', `mirror ${options.name}: cannot restore state from ${dir}: ${String(err)}`, { cause: err });
    }
    mirror.refresh('opened');
    for (const r of replicas) if (r.slot === 'member' && r.state === 'stale') mirror.startResync(r);
    const probeMs = options.probeIntervalMs ?? MIRROR_DEFAULTS.probeIntervalMs;
    if (probeMs > 0) {
      mirror.probeTimer = setInterval(() => mirror.track(mirror.probe()), probeMs);
      mirror.probeTimer.unref();
    }
    return mirror;
  }

  // ---- I/O path ----

  async read(offset: number, target: Buffer): Promise<void> {
    const readable = this.readable;
    if (readable.length === 0 || this.closing) throw this.noReplica('read');
    const r = this.balancer.pick(readable);
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
    return this.mutate('write', offset, totalLength(data), data, options);
  }

  trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.mutate('trim', offset, length, undefined, options);
  }

  writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    return this.mutate('zero', offset, length, undefined, options);
  }

  async flush(): Promise<void> {
    const targets = this.writeTargets;
    const tookOver = targets.map((r) => r.beginFlush());
    try {
      await this.fanOut('flush', 0, 0, undefined, undefined);
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

  private async mutate(op: MutatingOp, offset: number, length: number, data: readonly Buffer[] | undefined, options: ZeroOptions | undefined): Promise<void> {
    if (this.closing) throw new BlockError('ESHUTDOWN', `mirror ${this.name} is closing`);
    const gate = this.gate;
    let range: Range | undefined;
    if (gate.active) range = await gate.enter(offset, offset + length);
    else gate.enterUntracked();
    try {
      // A replica that is away must learn of this write before any replica has it.
      if (this.away.length > 0) {
        const marked = this.markAway(offset, length);
        if (marked) await marked;
      }
      await this.fanOut(op, offset, length, data, options);
    } finally {
      if (range) gate.leave(range);
      else gate.leaveUntracked();
    }
  }

  private async fanOut(op: MutatingOp, offset: number, length: number, data: readonly Buffer[] | undefined, options: ZeroOptions | undefined): Promise<void> {
    const targets = this.writeTargets;
    const inSync = this.writeInSync;
    if (inSync === 0) throw this.noReplica(op);
    const track = op !== 'flush' && !options?.fua;
    if (targets.length === 1) {
      try {
        await issue(targets[0]!.device, op, offset, length, data, options);
        if (track) this.noteWritten(targets[0]!, offset, length);
        return;
      } catch (err) {
        return this.afterFanOutErrors(op, offset, length, data, options, targets, inSync, [err]);
      }
    }
    const results = await Promise.all(targets.map((r) => issue(r.device, op, offset, length, data, options).then(returnTrue, (err: unknown) => err)));
    let failed = false;
    for (let i = 0; i < results.length; i++) {
      if (results[i] !== true) failed = true;
      else if (track) this.noteWritten(targets[i]!, offset, length);
    }
    if (failed) return this.afterFanOutErrors(op, offset, length, data, options, targets, inSync, results);
  }

  private noteWritten(r: Replica, offset: number, length: number): void {
    r.noteWritten(Math.floor(offset / this.regionSize), Math.floor((offset + length - 1) / this.regionSize));
  }

  /** Some replicas failed a write: drop them from the set, or fail the request if none took it. */
  private async afterFanOutErrors(
    op: MutatingOp,
    offset: number,
    length: number,
    data: readonly Buffer[] | undefined,
    options: ZeroOptions | undefined,
    targets: readonly Replica[],
    inSync: number,
    results: unknown[],
  ): Promise<void> {
    // A fast zero one replica cannot do fast is done the slow way there, to keep copies equal.
    if (op === 'zero' && options?.fastOnly) {
      const anyOk = results.some((r) => r === true);
      if (anyOk) {
        await Promise.all(
          results.map(async (result, i) => {
            if (isBlockError(result) && result.code === 'ENOTSUP') {
              results[i] = await issue(targets[i]!.device, op, offset, length, data, { ...options, fastOnly: false }).then(returnTrue, (err: unknown) => err);
              if (results[i] === true && !options.fua) this.noteWritten(targets[i]!, offset, length);
            }
          }),
        );
      }
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
    const range = op === 'flush' ? { offset: 0, length: 0 } : { offset, length };
    await Promise.all(
      results.map((result, i) => (result === true ? undefined : this.replicaFault(targets[i]!, result, 'write', range.offset, range.length, true))),
    );
    if (tookIt === 0) {
      throw new BlockError('EIO', `mirror ${this.name}: no in-sync replica completed the ${op}`, { cause: firstError });
    }
  }

  /** Mark the range in the bitmap of every member that is away; a promise if a bit flipped. */
  private markAway(offset: number, length: number): Promise<unknown> | undefined {
    let pending: Promise<void>[] | undefined;
    for (const r of this.away) {
      const p = r.bitmap?.mark(offset, length);
      if (p) (pending ??= []).push(p);
    }
    return pending && (pending.length === 1 ? pending[0] : Promise.all(pending));
  }

  private async readFromAnother(bad: Replica, err: unknown, offset: number, target: Buffer): Promise<void> {
    if (isRequestError(err)) throw err;
    await this.replicaFault(bad, err, 'read', offset, target.length, false);
    for (const good of this.readable) {
      if (good === bad) continue;
      good.outstanding += target.length;
      try {
        await good.device.read(offset, target);
      } catch (again) {
        await this.replicaFault(good, again, 'read', offset, target.length, false);
        continue;
      } finally {
        good.outstanding -= target.length;
      }
      if (bad.slot === 'member' && bad.state === 'in-sync') this.track(this.repair(bad, offset, target.length));
      return;
    }
    throw new BlockError('EIO', `mirror ${this.name}: no replica could read ${target.length} bytes at ${offset}`, { cause: err });
  }

  /** Rewrite a bad copy from a good one, under the range's lock so no host write races it. */
  private async repair(bad: Replica, offset: number, length: number): Promise<void> {
    const unlock = await this.gate.lock(offset, offset + length);
    try {
      const source = this.readable.find((r) => r !== bad);
      if (!source || bad.state !== 'in-sync') return;
      const buffer = Buffer.allocUnsafe(length);
      try {
        await source.device.read(offset, buffer);
      } catch (err) {
        await this.replicaFault(source, err, 'read', offset, length, false);
        return;
      }
      try {
        await bad.device.write(offset, [buffer]);
      } catch (err) {
        await this.replicaFault(bad, err, 'write', offset, length, true);
        return;
      }
      this.readRepairs++;
      bad.readRepairs++;
      this.log.warn({ replica: bad.name, from: source.name, offset, length }, 'read error repaired from another replica');
    } finally {
      unlock();
    }
  }

  private async fromAnyReplica<T>(call: (device: BlockDevice) => Promise<T>, what: string): Promise<T> {
    const readable = this.readable;
    if (readable.length === 0) throw this.noReplica(what);
    const first = this.balancer.pick(readable);
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

  // ---- replica states ----

  /**
   * A replica failed an operation. Every failure counts towards its failure limit; with
   * `drop`, it also leaves the in-sync set (after recording [offset, offset+length) as
   * missed). The last in-sync replica is never dropped: there would be nothing to resync from.
   */
  private async replicaFault(r: Replica, err: unknown, op: 'read' | 'write', offset: number, length: number, drop: boolean): Promise<void> {
    if (this.closing) return;
    if (op === 'read') r.readErrors++;
    else r.writeErrors++;
    // Requests already in flight when a replica failed fail too: one failure, not many.
    const alreadyDown = r.state === 'failed' || r.state === 'quarantined';
    const exceeded = !alreadyDown && r.recordFailure(this.failureLimit, Date.now());
    const reason = err instanceof Error ? err.message : String(err);
    const last = r.state === 'in-sync' && this.readable.length === 1 && this.readable[0] === r;
    if (last) {
      this.log.error({ replica: r.name, op, err: reason }, 'the last in-sync replica failed; keeping it in the set');
      return;
    }
    const pending: Promise<unknown>[] = [];
    if (r.slot === 'member') {
      if (drop || exceeded) {
        if (!r.bitmap) r.bitmap = DirtyBitmap.create(bitmapPath(this.dir, r.name), this.geometry(), 'clean');
        const marked = length > 0 ? r.bitmap.mark(offset, length) : r.bitmap.persist();
        if (marked) pending.push(marked);
        const lost = r.bitmap.markRegions(r.takeUnflushed());
        if (lost) pending.push(lost);
      }
    }
    const next: ReplicaState | undefined = exceeded ? 'quarantined' : drop && r.state !== 'quarantined' ? 'failed' : undefined;
    if (next && next !== r.state) {
      this.setState(r, next, exceeded ? `failure limit exceeded (more than ${this.failureLimit.failures} failures in ${this.failureLimit.windowMs} ms): ${reason}` : reason);
      this.stopResync(r);
      this.promoteSpares();
      pending.push(this.saveState());
    }
    await Promise.all(pending);
  }

  private setState(r: Replica, state: ReplicaState, reason: string): void {
    const from = r.state;
    if (from === state) return;
    r.state = state;
    const level = state === 'failed' || state === 'quarantined' ? 'warn' : 'info';
    this.log[level]({ replica: r.name, from, to: state, role: this.roleOf(r), reason }, `replica ${r.name} is now ${state}`);
    this.refresh(reason);
  }

  /** Rebuild the hot-path views and log a change of the device's state. */
  private refresh(reason: string): void {
    const members = this.all.filter((r) => r.slot === 'member');
    this.readable = members.filter((r) => r.state === 'in-sync');
    const resyncing = members.filter((r) => r.state === 'resyncing');
    this.writeTargets = [...this.readable, ...resyncing];
    this.writeInSync = this.readable.length;
    this.away = members.filter((r) => r.state !== 'in-sync' && r.state !== 'resyncing');
    const state: DeviceState =
      this.readable.length === 0 ? 'failed' : resyncing.length > 0 ? 'rebuilding' : this.readable.length < members.length ? 'degraded' : 'optimal';
    if (!this.announced) {
      this.announced = true;
      this.deviceState = state;
      this.log.info({ state, replicas: this.replicaSummary() }, `mirror ${this.name} opened: ${state}`);
    } else if (state !== this.deviceState) {
      const from = this.deviceState;
      this.deviceState = state;
      const level = state === 'optimal' ? 'info' : state === 'failed' ? 'error' : 'warn';
      this.log[level]({ from, to: state, reason, replicas: this.replicaSummary() }, `mirror ${this.name} is ${state}`);
    }
  }

  /** Put a standby spare in the place of each failed or quarantined member. */
  private promoteSpares(): void {
    for (const member of this.all) {
      if (member.slot !== 'member' || (member.state !== 'failed' && member.state !== 'quarantined')) continue;
      const spare = this.all.find((r) => r.slot === 'alternate' && r.state === 'standby');
      if (!spare) return;
      spare.slot = 'member';
      spare.bitmap = DirtyBitmap.create(bitmapPath(this.dir, spare.name), this.geometry(), 'dirty');
      member.slot = 'alternate';
      const oldBitmap = member.bitmap;
      member.bitmap = undefined;
      if (oldBitmap) this.track(oldBitmap.remove());
      this.log.warn({ spare: spare.name, replaces: member.name }, `spare ${spare.name} promoted in place of ${member.name}`);
      spare.state = 'stale';
      this.refresh(`spare ${spare.name} promoted`);
      this.track(this.saveState().then(() => this.startResync(spare)));
    }
  }

  /** Begin copying a stale member's dirty regions (no-op if one is running or no source exists). */
  private startResync(r: Replica): void {
    if (this.closing || this.resyncs.has(r) || r.slot !== 'member' || !r.bitmap) return;
    if (r.state !== 'stale') return;
    if (this.readable.length === 0) {
      this.log.warn({ replica: r.name }, 'no in-sync replica to resync from');
      return;
    }
    const host: ResyncHost = {
      gate: this.gate,
      log: this.log,
      pickSource: () => (this.readable.length ? this.balancer.pick(this.readable) : undefined),
      sourceFailed: (source, err, offset, length) => this.replicaFault(source, err, 'read', offset, length, true),
      copied: (bytes) => {
        this.bytesResynced += bytes;
      },
    };
    const chunk = Math.min(MIRROR_DEFAULTS.copyChunk, this.blockSizes.maximum);
    const resync = new Resync(host, r, { rate: this.rate, chunk, logIntervalMs: this.logIntervalMs });
    this.setState(r, 'resyncing', `resync of ${r.bitmap.dirtyRegions} dirty regions (${r.bitmap.dirtyBytes} bytes) started`);
    const done = resync.run().then(
      (outcome) => this.resyncEnded(r, resync, outcome),
      (err: unknown) => this.resyncEnded(r, resync, 'target-failed', err),
    );
    this.resyncs.set(r, { resync, done });
  }

  private async resyncEnded(r: Replica, resync: Resync, outcome: string, err?: unknown): Promise<void> {
    this.resyncs.delete(r);
    if (this.closing || r.state !== 'resyncing') return;
    const progress = resync.progress();
    if (outcome === 'done') {
      this.setState(r, 'in-sync', `resync complete: ${progress.bytesCopied} bytes copied`);
      const bitmap = r.bitmap;
      r.bitmap = undefined;
      await this.saveState();
      await bitmap?.remove();
    } else if (outcome === 'target-failed') {
      await this.replicaFault(r, err ?? resync.targetError, 'write', 0, 0, true);
    } else if (outcome === 'no-source') {
      this.setState(r, 'stale', 'resync paused: no in-sync replica to copy from');
    }
  }

  private stopResync(r: Replica): void {
    this.resyncs.get(r)?.resync.stop();
  }

  /** Periodic check of failed replicas: a replica that answers a read is back. */
  private async probe(): Promise<void> {
    if (this.probing || this.closing) return;
    this.probing = true;
    try {
      for (const r of this.all) {
        if (this.closing) return;
        if (r.state === 'failed') await this.probeOne(r);
        else if (r.state === 'stale' && r.slot === 'member') this.startResync(r);
      }
    } finally {
      this.probing = false;
    }
  }

  /** Some devices (NBD clients) only reconnect when asked for I/O, so the probe is a read. */
  private async probeOne(r: Replica): Promise<boolean> {
    try {
      await r.device.read(0, this.probeBuffer);
    } catch {
      return false;
    }
    if (r.state !== 'failed' || this.closing) return false;
    this.replicaReturned(r, 'probe read succeeded');
    return true;
  }

  private replicaReturned(r: Replica, reason: string): void {
    if (r.slot === 'alternate') {
      this.setState(r, 'standby', reason);
      this.promoteSpares();
      this.track(this.saveState());
      return;
    }
    r.bitmap ??= DirtyBitmap.create(bitmapPath(this.dir, r.name), this.geometry(), 'dirty');
    this.setState(r, 'stale', reason);
    this.track(this.saveState());
    this.startResync(r);
  }

  // ---- operator actions ----

  /** Bring a failed replica back now instead of waiting for the probe; starts its resync. */
  async reintegrate(replicaName: string): Promise<void> {
    const r = this.replica(replicaName);
    if (r.state === 'quarantined') throw new BlockError('EPERM', `replica ${r.name} is quarantined: clear the quarantine first`);
    if (r.state === 'failed') {
      if (!(await this.probeOne(r)) && r.state === 'failed') throw new BlockError('EIO', `replica ${r.name} does not answer yet`);
    } else if (r.state === 'stale') this.startResync(r);
  }

  /** Lift a quarantine: the replica is failed again, and returns once it answers a probe. */
  async clearQuarantine(replicaName: string): Promise<void> {
    const r = this.replica(replicaName);
    if (r.state !== 'quarantined') throw new BlockError('EINVAL', `replica ${r.name} is not quarantined (it is ${r.state})`);
    r.clearFailures();
    this.setState(r, 'failed', 'quarantine cleared by operator');
    await this.saveState();
    await this.probeOne(r);
  }

  /** Resolves once no resync is running (tests and orderly maintenance). */
  async resyncIdle(): Promise<void> {
    while (this.resyncs.size > 0) await Promise.all([...this.resyncs.values()].map((x) => x.done));
  }

  /** Resolves once background work (repairs, state saves) has finished. */
  async settled(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  replicaStates(): Array<{ name: string; role: ReplicaRole; state: ReplicaState }> {
    return this.all.map((r) => ({ name: r.name, role: this.roleOf(r), state: r.state }));
  }

  // ---- status and lifecycle ----

  status(): DeviceStatus {
    const resync = [...this.resyncs.values()].map((x) => x.resync.progress());
    return {
      state: this.deviceState,
      detail: {
        replicas: this.all.map((r) => ({
          name: r.name,
          role: this.roleOf(r),
          state: r.state,
          dirtyBytes: r.bitmap?.dirtyBytes ?? 0,
          outstandingBytes: r.outstanding,
          readErrors: r.readErrors,
          writeErrors: r.writeErrors,
          readRepairs: r.readRepairs,
          recentFailures: r.failuresInWindow(this.failureLimit, Date.now()),
        })),
        bytesResynced: this.bytesResynced,
        readRepairs: this.readRepairs,
        resync,
      },
    };
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.probeTimer) clearInterval(this.probeTimer);
    for (const { resync } of this.resyncs.values()) resync.stop();
    await Promise.allSettled([...this.resyncs.values()].map((x) => x.done));
    await this.settled();
    await this.stateSaver.request().catch((err: unknown) => this.log.error({ err: String(err) }, 'could not save mirror state'));
    await Promise.allSettled(this.all.map((r) => r.bitmap?.persist().then(() => r.bitmap?.close())));
    await Promise.allSettled(this.all.map((r) => r.device.close()));
    this.log.info('mirror closed');
  }

  private roleOf(r: Replica): ReplicaRole {
    if (r.slot === 'alternate') return 'alternate';
    return this.readable[0] === r ? 'primary' : 'secondary';
  }

  private replica(name: string): Replica {
    const r = this.all.find((x) => x.name === name);
    if (!r) throw new BlockError('EINVAL', `mirror ${this.name} has no replica ${name}`);
    return r;
  }

  private replicaSummary(): Record<string, string> {
    return Object.fromEntries(this.all.map((r) => [r.name, `${this.roleOf(r)}/${r.state}`]));
  }

  private geometry() {
    return { deviceSize: this.size, regionSize: this.regionSize };
  }

  private persisted(): PersistedReplica[] {
    return this.all.map((r) => ({ name: r.name, slot: r.slot, state: persistedState(r.slot, r.state) }));
  }

  private saveState(): Promise<void> {
    return this.stateSaver.request();
  }

  private async loadBitmaps(): Promise<void> {
    for (const r of this.all) {
      if (r.slot !== 'member' || r.state === 'in-sync') continue;
      const { bitmap, found } = await DirtyBitmap.load(bitmapPath(this.dir, r.name), this.geometry());
      r.bitmap = bitmap;
      this.log.info({ replica: r.name, state: r.state, dirtyBytes: bitmap.dirtyBytes, bitmapFound: found }, 'restored replica bitmap');
    }
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.catch((err: unknown) => this.log.error({ err: err instanceof Error ? err.message : String(err) }, 'mirror background task failed'));
    this.background.add(tracked);
    void tracked.finally(() => this.background.delete(tracked));
  }
}

function issue(
  device: BlockDevice,
  op: MutatingOp,
  offset: number,
  length: number,
  data: readonly Buffer[] | undefined,
  options: ZeroOptions | undefined,
): Promise<void> {
  try {
    switch (op) {
      case 'write':
        return device.write(offset, data!, options);
      case 'trim':
        return device.trim(offset, length, options);
      case 'zero':
        return device.writeZeroes(offset, length, options);
      case 'flush':
        return device.flush();
    }
  } catch (err) {
    return Promise.reject(err);
  }
}
