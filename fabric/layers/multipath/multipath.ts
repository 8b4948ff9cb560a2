/**
 * A path failover set over devices that reach the same disk (like dm-multipath): each
 * request goes down one path; a path that fails is taken out of service and the request is
 * re-issued on a surviving path, so the caller never sees the failure.
 *
 *   new MultipathDevice({ name, paths: [devA, devB], policy: 'active-passive' })
 *   .failback()            operator: move I/O back to the preferred (first) healthy path
 *   .clearMarginal(name)   operator: return a marginal path to service
 *
 * active-passive: one path carries I/O, the rest stand by in priority order; failback to the
 *   preferred path is manual, immediate, or after it has been healthy for N seconds.
 * active-active: every healthy path carries I/O; each request takes the path with the fewest
 *   outstanding requests.
 * With no usable path, requests wait up to `noPathRetryMs` for one to come back, then fail EIO.
 * A probe (a small read) runs on every path each `probeIntervalMs`: it finds idle paths that
 * broke and failed paths that recovered (for an NBD client, the read reconnects).
 */
import type { BlockDevice, BlockSizes, Capabilities, DeviceState, DeviceStatus, Extent, WriteOptions, ZeroOptions } from '../../device.js';
import { BlockError } from '../../errors.js';
import { logger, type Logger } from '../../log.js';
import { commonBlockSizes } from '../combine.js';
import { isPathError } from './classify.js';
import { Path, type PathState } from './path.js';

export type MultipathPolicy = 'active-passive' | 'active-active';
/** 'manual', 'immediate', or seconds the preferred path must stay healthy first. */
export type Failback = 'manual' | 'immediate' | number;

export interface MultipathTuning {
  readonly policy?: MultipathPolicy;
  readonly failback?: Failback;
  /** How long requests wait for a path when none is usable (0: fail at once). */
  readonly noPathRetryMs?: number;
  readonly probeIntervalMs?: number;
  /** `failures` failures inside `windowMs` make a recovering path marginal. */
  readonly marginal?: { readonly failures: number; readonly windowMs: number };
}

export interface MultipathOptions extends MultipathTuning {
  readonly name: string;
  /** In priority order: the first is the preferred path. */
  readonly paths: readonly BlockDevice[];
}

export const MULTIPATH_DEFAULTS = {
  policy: 'active-passive' as MultipathPolicy,
  failback: 'immediate' as Failback,
  noPathRetryMs: 10_000,
  probeIntervalMs: 2_000,
  marginal: { failures: 3, windowMs: 60_000 },
};

const READ = 0;
const WRITE = 1;
const FLUSH = 2;
const TRIM = 3;
const ZERO = 4;
const STATUS = 5;
const CACHE = 6;

/** While no path is usable, probe this often at most, so a returning path is found fast. */
const URGENT_PROBE_MS = 100;

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | undefined;
}

export class MultipathDevice implements BlockDevice {
  readonly name: string;
  readonly size: number;
  readonly blockSizes: BlockSizes;
  readonly capabilities: Capabilities;
  readonly policy: MultipathPolicy;
  private readonly failbackMode: Failback;
  private readonly noPathRetryMs: number;
  private readonly probeIntervalMs: number;
  private readonly marginal: { failures: number; windowMs: number };
  private readonly paths: Path[];
  private active: Path | undefined;
  private state: DeviceState = 'optimal';
  private waiters: Waiter[] = [];
  private probeTimer: NodeJS.Timeout | undefined;
  private turn = 0;
  private closed = false;
  private readonly log: Logger;

  constructor(options: MultipathOptions) {
    const first = options.paths[0];
    if (!first) throw new BlockError('EINVAL', `multipath ${options.name} needs at least one path`);
    for (const p of options.paths) {
      if (p.size !== first.size) {
        throw new BlockError('EINVAL', `multipath ${options.name}: path ${p.name} has ${p.size} bytes, ${first.name} has ${first.size}`);
      }
    }
    this.name = options.name;
    this.size = first.size;
    this.policy = options.policy ?? MULTIPATH_DEFAULTS.policy;
    this.failbackMode = options.failback ?? MULTIPATH_DEFAULTS.failback;
    this.noPathRetryMs = options.noPathRetryMs ?? MULTIPATH_DEFAULTS.noPathRetryMs;
    this.probeIntervalMs = options.probeIntervalMs ?? MULTIPATH_DEFAULTS.probeIntervalMs;
    this.marginal = { ...(options.marginal ?? MULTIPATH_DEFAULTS.marginal) };
    // Requests must suit every path: the strictest alignment and the smallest maximum.
    this.blockSizes = commonBlockSizes(options.paths);
    this.capabilities = combineCapabilities(options.paths);
    const probeSize = Math.max(512, this.blockSizes.minimum);
    this.paths = options.paths.map((d, i) => new Path(d, i, Math.min(probeSize, this.size)));
    this.log = logger('multipath', { device: this.name, policy: this.policy });

    const now = Date.now();
    for (const path of this.paths) {
      path.since = now;
      // A child that starts without its server (a detached NBD client) is probed until it answers.
      if (path.device.status().state === 'failed') this.setPathState(path, 'failed', 'not reachable at start');
      else if (this.policy === 'active-active') this.setPathState(path, 'active');
      else if (!this.active) this.makeActive(path, 'first healthy path');
    }
    this.updateDeviceState();
    this.scheduleProbe();
  }

  read(offset: number, target: Buffer): Promise<void> {
    return this.run(READ, offset, 0, target, undefined, undefined) as Promise<void>;
  }
  write(offset: number, data: readonly Buffer[], options?: WriteOptions): Promise<void> {
    return this.run(WRITE, offset, 0, undefined, data, options) as Promise<void>;
  }
  async flush(): Promise<void> {
    // Writes may have gone down any path; flush every one that carries I/O.
    if (this.policy === 'active-active') {
      const carrying = this.paths.filter((p) => p.state === 'active');
      if (carrying.length > 1) {
        await Promise.all(carrying.map((p) => this.run(FLUSH, 0, 0, undefined, undefined, undefined, p)));
        return;
      }
    }
    await this.run(FLUSH, 0, 0, undefined, undefined, undefined);
  }
  trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.run(TRIM, offset, length, undefined, undefined, options) as Promise<void>;
  }
  writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    return this.run(ZERO, offset, length, undefined, undefined, options) as Promise<void>;
  }
  blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.run(STATUS, offset, length, undefined, undefined, undefined) as Promise<Extent[]>;
  }
  cache(offset: number, length: number): Promise<void> {
    return this.run(CACHE, offset, length, undefined, undefined, undefined) as Promise<void>;
  }

  status(): DeviceStatus {
    return {
      state: this.state,
      detail: {
        policy: this.policy,
        failback: this.failbackMode,
        ...(this.active ? { activePath: this.active.device.name } : {}),
        waiting: this.waiters.length,
        paths: this.paths.map((p) => p.describe()),
      },
    };
  }

  /** Operator failback: the preferred healthy path becomes the active one. */
  failback(): void {
    const preferred = this.paths.find((p) => p.usable);
    if (this.policy === 'active-passive' && preferred && preferred !== this.active) this.makeActive(preferred, 'operator failback');
  }

  /** Operator override: a marginal path goes back into service now. */
  clearMarginal(name: string): boolean {
    const path = this.paths.find((p) => p.device.name === name);
    if (!path || path.state !== 'marginal') return false;
    path.failures.length = 0;
    this.bringIntoService(path, 'marginal state cleared by operator');
    return true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(new BlockError('ESHUTDOWN', `device ${this.name} is closed`));
    }
    await Promise.allSettled(this.paths.map((p) => p.device.close()));
  }

  /**
   * Issue one request on a path, re-issuing it on another path after a path error. `only`
   * pins the first attempt to one path (flush on every active path).
   */
  private async run(
    op: number,
    offset: number,
    length: number,
    target: Buffer | undefined,
    data: readonly Buffer[] | undefined,
    options: ZeroOptions | undefined,
    only?: Path,
  ): Promise<unknown> {
    for (;;) {
      if (this.closed) throw new BlockError('ESHUTDOWN', `device ${this.name} is closed`);
      let path = only && only.state === 'active' ? only : this.pick();
      only = undefined;
      if (!path) {
        await this.waitForPath();
        continue;
      }
      path.outstanding++;
      path.ios++;
      try {
        return await issue(path.device, op, offset, length, target, data, options);
      } catch (err) {
        if (this.closed || !isPathError(err)) throw err;
        path.errors++;
        this.pathFailed(path, err);
      } finally {
        path.outstanding--;
      }
    }
  }

  private pick(): Path | undefined {
    if (this.policy === 'active-passive') return this.active;
    const paths = this.paths;
    const n = paths.length;
    // Rotate the starting point so ties spread instead of piling on the first path.
    const start = this.turn++ % n;
    let best: Path | undefined;
    for (let k = 0; k < n; k++) {
      const p = paths[(start + k) % n]!;
      if (p.state === 'active' && (!best || p.outstanding < best.outstanding)) best = p;
    }
    return best;
  }

  private waitForPath(): Promise<void> {
    if (this.noPathRetryMs <= 0) return Promise.reject(this.noPathError());
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, timer: undefined };
      waiter.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(this.noPathError());
      }, this.noPathRetryMs);
      this.waiters.push(waiter);
      if (this.waiters.length === 1) this.scheduleProbe(0);
    });
  }

  private noPathError(): BlockError {
    return new BlockError('EIO', `${this.name}: no usable path (${this.paths.map((p) => `${p.device.name} ${p.state}`).join(', ')})`);
  }

  private pathFailed(path: Path, err: unknown): void {
    path.lastError = err instanceof Error ? err.message : String(err);
    if (!path.usable) return;
    const now = Date.now();
    path.noteFailure(now, this.marginal.windowMs);
    this.setPathState(path, 'failed', path.lastError);
    if (this.active === path) {
      this.active = undefined;
      const next = this.paths.find((p) => p.usable);
      if (next) this.makeActive(next, `path ${path.device.name} failed`);
    }
    this.updateDeviceState();
    if (!this.paths.some((p) => p.usable)) this.scheduleProbe(0);
  }

  /** A failed path answered its probe. */
  private pathRecovered(path: Path): void {
    const now = Date.now();
    if (path.recentFailures(now, this.marginal.windowMs) >= this.marginal.failures) {
      path.since = now;
      this.setPathState(path, 'marginal', `${path.failures.length} failures within ${this.marginal.windowMs} ms`);
      this.updateDeviceState();
      return;
    }
    this.bringIntoService(path, 'path recovered');
  }

  private bringIntoService(path: Path, why: string): void {
    path.since = Date.now();
    if (this.policy === 'active-passive') {
      if (!this.active) this.makeActive(path, why);
      else if (this.failbackMode === 'immediate' && path.index < this.active.index) this.makeActive(path, `${why}, immediate failback`);
      else this.setPathState(path, 'standby', why);
    } else this.setPathState(path, 'active', why);
    this.updateDeviceState();
    this.resumeWaiters();
  }

  private makeActive(path: Path, why: string): void {
    const previous = this.active;
    if (previous && previous !== path && previous.usable) this.setPathState(previous, 'standby', why);
    this.active = path;
    this.setPathState(path, 'active', why);
  }

  private setPathState(path: Path, state: PathState, why?: string): void {
    if (path.state === state) return;
    const from = path.state;
    path.state = state;
    const fields = { path: path.device.name, from, to: state, ...(why ? { reason: why } : {}) };
    if (state === 'failed' || state === 'marginal') this.log.warn(fields, `path ${path.device.name} ${state}`);
    else this.log.info(fields, `path ${path.device.name} ${state}`);
  }

  private updateDeviceState(): void {
    const usable = this.paths.reduce((n, p) => n + (p.usable ? 1 : 0), 0);
    const state: DeviceState = usable === this.paths.length ? 'optimal' : usable === 0 ? 'failed' : 'degraded';
    if (state === this.state) return;
    const from = this.state;
    this.state = state;
    const fields = { from, to: state, usablePaths: usable, paths: this.paths.length };
    if (state === 'optimal') this.log.info(fields, `multipath device ${this.name} ${state}`);
    else this.log.warn(fields, `multipath device ${this.name} ${state}`);
  }

  private resumeWaiters(): void {
    if (this.waiters.length === 0 || !this.paths.some((p) => p.state === 'active')) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      if (w.timer) clearTimeout(w.timer);
      w.resolve();
    }
  }

  private scheduleProbe(delay?: number): void {
    if (this.closed) return;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    const anyUsable = this.paths.some((p) => p.usable);
    const wait = delay ?? (anyUsable ? this.probeIntervalMs : Math.min(this.probeIntervalMs, URGENT_PROBE_MS));
    this.probeTimer = setTimeout(() => this.probeRound(), wait);
    this.probeTimer.unref();
  }

  private probeRound(): void {
    if (this.closed) return;
    for (const path of this.paths) if (!path.probing) void this.probe(path);
    this.timedFailback();
    this.scheduleProbe();
  }

  private async probe(path: Path): Promise<void> {
    path.probing = true;
    let ok = true;
    try {
      await path.device.read(0, path.probeBuffer);
    } catch (err) {
      ok = false;
      if (!this.closed) {
        if (isPathError(err)) this.pathFailed(path, err);
        if (path.state === 'marginal') path.since = Date.now();
      }
    } finally {
      path.probing = false;
    }
    if (!ok || this.closed) return;
    if (path.state === 'failed') this.pathRecovered(path);
    else if (path.state === 'marginal' && Date.now() - path.since >= this.marginal.windowMs) {
      path.failures.length = 0;
      this.bringIntoService(path, `healthy for ${this.marginal.windowMs} ms after being marginal`);
    }
  }

  private timedFailback(): void {
    if (this.policy !== 'active-passive' || typeof this.failbackMode !== 'number') return;
    const preferred = this.paths.find((p) => p.usable);
    if (!preferred || preferred === this.active || !this.active || preferred.index > this.active.index) return;
    if (Date.now() - preferred.since >= this.failbackMode * 1000) {
      this.makeActive(preferred, `healthy for ${this.failbackMode} s, failback`);
    }
  }
}

function issue(
  device: BlockDevice,
  op: number,
  offset: number,
  length: number,
  target: Buffer | undefined,
  data: readonly Buffer[] | undefined,
  options: ZeroOptions | undefined,
): Promise<unknown> {
  switch (op) {
    case READ:
      return device.read(offset, target!);
    case WRITE:
      return device.write(offset, data!, options);
    case FLUSH:
      return device.flush();
    case TRIM:
      return device.trim(offset, length, options);
    case ZERO:
      return device.writeZeroes(offset, length, options);
    case STATUS:
      return device.blockStatus(offset, length);
    default:
      return device.cache(offset, length);
  }
}


/** An operation is offered only if every path can do it, since any path may carry it. */
function combineCapabilities(paths: readonly BlockDevice[]): Capabilities {
  const keys = Object.keys(paths[0]!.capabilities) as (keyof Capabilities)[];
  const out: Record<string, boolean> = {};
  for (const k of keys) {
    out[k] = k === 'readOnly' || k === 'rotational' ? paths.some((p) => p.capabilities[k]) : paths.every((p) => p.capabilities[k]);
  }
  return out as unknown as Capabilities;
}
