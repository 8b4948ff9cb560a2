/**
 * The data path of a path failover set over devices that reach the same disk (like the
 * dm-multipath target): each request goes down one path; a path whose *transport* fails (a
 * lost connection, a timeout) is taken out of service and the request is re-issued on a
 * surviving path, so the caller never sees it. An error the device answered with (a medium
 * error, a full disk) is the request's answer: it goes back to the caller and fails no path,
 * since the same disk answers the same on every path.
 *
 *   new MultipathDevice({ name, paths: [devA, devB], policy: 'active-passive' })
 *
 * active-passive: one path carries I/O, the rest stand by in priority order; when it fails,
 *   the next usable path in that order takes over at once.
 * active-active: every usable path carries I/O; each request takes the path with the fewest
 *   outstanding requests.
 * With no usable path, requests wait up to `noPathRetryMs` for one to come back, then fail EIO.
 *
 * When a path comes back, failback, marginal paths and probing are the set's controller's
 * (failover/path-set.ts), through failPath, reinstatePath, makeActive and probePath.
 */
import type { BlockDevice, BlockSizes, Capabilities, DeviceState, DeviceStatus, Extent, WriteOptions, ZeroOptions } from '../../device.js';
import { BlockError, isBlockError, isTransportError } from '../../errors.js';
import { fabricEvents } from '../../events.js';
import { logger, type Logger } from '../../log.js';
import { issue, type Request } from '../../operation.js';
import { commonBlockSizes } from '../combine.js';
import { Path, type PathState } from './path.js';
import { MAX_FENCE_GENERATION, presentsTokens, type Fenceable, type FenceToken } from '../../fencing.js';

export type MultipathPolicy = 'active-passive' | 'active-active';

export interface MultipathOptions {
  readonly name: string;
  /** In priority order: the first is the preferred path. */
  readonly paths: readonly BlockDevice[];
  readonly policy?: MultipathPolicy;
  /** How long requests wait for a path when none is usable (0: fail at once). */
  readonly noPathRetryMs?: number;
  /**
   * Fence the paths (where they can be: blockgate NBD servers): every path presents the
   * device's generation, and the generation grows whenever a path is taken out, before any
   * request is re-issued elsewhere, so the server refuses what the old path still delivers.
   */
  readonly fencing?: boolean;
}

/** Path generations start from the wall clock in seconds, so they also grow across restarts. */
export function firstGeneration(): number {
  return Math.floor(Date.now() / 1000);
}

export const MULTIPATH_DEFAULTS = {
  policy: 'active-passive' as MultipathPolicy,
  noPathRetryMs: 10_000,
};

export interface PathInfo {
  readonly name: string;
  readonly state: PathState;
  readonly outstanding: number;
  readonly ios: number;
  readonly errors: number;
  readonly lastError?: string;
}

export interface MultipathInfo {
  readonly state: DeviceState;
  readonly policy: MultipathPolicy;
  readonly activePath?: string;
  /** Requests queued until a path is usable. */
  readonly waiting: number;
  readonly paths: readonly PathInfo[];
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | undefined;
}

export class MultipathDevice implements BlockDevice, Fenceable {
  readonly name: string;
  readonly size: number;
  readonly blockSizes: BlockSizes;
  readonly capabilities: Capabilities;
  readonly policy: MultipathPolicy;
  private readonly noPathRetryMs: number;
  private readonly paths: Path[];
  private active: Path | undefined;
  private state: DeviceState = 'optimal';
  private waiters: Waiter[] = [];
  private turn = 0;
  private closed = false;
  private readonly log: Logger;
  /**
   * The fencing token, when fencing: the term a cluster Primary gave it (0 until then), and a
   * generation seeded from the wall clock in seconds (firstGeneration) so it also grows across
   * restarts of this process (a server remembers the newest it has seen), then one more per
   * path taken out.
   */
  private token: FenceToken | undefined;

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
    this.noPathRetryMs = options.noPathRetryMs ?? MULTIPATH_DEFAULTS.noPathRetryMs;
    // Requests must suit every path: the strictest alignment and the smallest maximum.
    this.blockSizes = commonBlockSizes(options.paths);
    this.capabilities = combineCapabilities(options.paths);
    const probeSize = Math.max(512, this.blockSizes.minimum);
    this.paths = options.paths.map((d, i) => new Path(d, i, Math.min(probeSize, this.size)));
    this.log = logger('multipath', { device: this.name, policy: this.policy });
    if (options.fencing) this.fenceAll({ term: 0, generation: firstGeneration() });

    for (const path of this.paths) {
      // A child that starts without its server (a detached NBD client) waits for the controller.
      if (path.device.status().state === 'failed') this.setPathState(path, 'failed', 'not reachable at start');
      else if (this.policy === 'active-active') this.setPathState(path, 'active', 'in service at start');
      else if (!this.active) this.makeActivePath(path, 'first healthy path');
    }
    this.updateDeviceState('started');
  }

  read(offset: number, target: Buffer): Promise<void> {
    return this.run({ op: 'read', offset, target }) as Promise<void>;
  }
  write(offset: number, data: readonly Buffer[], options?: WriteOptions): Promise<void> {
    return this.run({ op: 'write', offset, data, options }) as Promise<void>;
  }
  async flush(): Promise<void> {
    // Writes may have gone down any path; flush every one that carries I/O.
    if (this.policy === 'active-active') {
      const carrying = this.paths.filter((p) => p.state === 'active');
      if (carrying.length > 1) {
        await Promise.all(carrying.map((p) => this.run({ op: 'flush' }, p)));
        return;
      }
    }
    await this.run({ op: 'flush' });
  }
  trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.run({ op: 'trim', offset, length, options }) as Promise<void>;
  }
  writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    return this.run({ op: 'writeZeroes', offset, length, options }) as Promise<void>;
  }
  blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.run({ op: 'blockStatus', offset, length }) as Promise<Extent[]>;
  }
  cache(offset: number, length: number): Promise<void> {
    return this.run({ op: 'cache', offset, length }) as Promise<void>;
  }

  status(): DeviceStatus {
    return { state: this.state };
  }

  info(): MultipathInfo {
    return {
      state: this.state,
      policy: this.policy,
      ...(this.active && { activePath: this.active.name }),
      waiting: this.waiters.length,
      paths: this.paths.map((p) => ({
        name: p.name,
        state: p.state,
        outstanding: p.outstanding,
        ios: p.ios,
        errors: p.errors,
        ...(p.lastError !== undefined && { lastError: p.lastError }),
      })),
    };
  }

  // ---- mechanism, for the set's controller ----

  /** Take a path out of service; I/O moves to the others. */
  failPath(name: string, reason: string): void {
    const path = this.path(name);
    path.lastError = reason;
    this.takeOut(path, reason);
  }

  /** Put a failed path back in service: active under active-active, standby (or active if none is) under active-passive. */
  reinstatePath(name: string, reason: string): void {
    const path = this.path(name);
    if (path.usable) return;
    if (this.policy === 'active-active') this.setPathState(path, 'active', reason);
    else if (!this.active) this.makeActivePath(path, reason);
    else this.setPathState(path, 'standby', reason);
    this.updateDeviceState(reason);
    this.resumeWaiters();
  }

  /** Active-passive: make a usable path the one that carries I/O. */
  makeActive(name: string, reason: string): void {
    const path = this.path(name);
    if (this.policy !== 'active-passive') throw new BlockError('EPERM', `multipath ${this.name} is active-active: every usable path is active`);
    if (!path.usable) throw new BlockError('EPERM', `path ${name} of ${this.name} is ${path.state}`);
    if (path !== this.active) this.makeActivePath(path, reason);
  }

  /** A small read down one path: resolves if the path answers (for an NBD client, it reconnects). */
  async probePath(name: string): Promise<void> {
    const path = this.path(name);
    await path.device.read(0, path.probeBuffer);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(new BlockError('ESHUTDOWN', `device ${this.name} is closed`));
    }
    await Promise.allSettled(this.paths.map((p) => p.device.close()));
  }

  // ---- I/O internals ----

  /**
   * Issue one request on a path, re-issuing it on another path after a transport failure.
   * `only` pins the first attempt to one path (flush on every active path).
   */
  private async run(request: Request, only?: Path): Promise<unknown> {
    for (;;) {
      if (this.closed) throw new BlockError('ESHUTDOWN', `device ${this.name} is closed`);
      const path = only && only.state === 'active' ? only : this.pick();
      only = undefined;
      if (!path) {
        await this.waitForPath();
        continue;
      }
      path.outstanding++;
      path.ios++;
      try {
        return await issue(path.device, request);
      } catch (err) {
        if (this.closed) throw err;
        const transport = isTransportError(err);
        const message = err instanceof Error ? err.message : String(err);
        fabricEvents.ioError.publish({
          device: this,
          name: this.name,
          member: path.name,
          op: request.op,
          code: isBlockError(err) ? err.code : 'unknown',
          transport,
          alreadyOut: !path.usable,
          message,
        });
        if (!transport) throw err;
        path.errors++;
        path.lastError = message;
        this.takeOut(path, message);
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
    });
  }

  /** To whoever sits above, a device with no path is one that cannot be reached. */
  private noPathError(): BlockError {
    return new BlockError('EIO', `${this.name}: no usable path (${this.paths.map((p) => `${p.name} ${p.state}`).join(', ')})`, { transport: true });
  }

  private takeOut(path: Path, reason: string): void {
    if (!path.usable) return;
    this.setPathState(path, 'failed', reason);
    // Before anything is re-issued on another path: what the failed one delivers late is refused.
    if (this.token) this.fenceAll({ term: this.token.term, generation: Math.min(MAX_FENCE_GENERATION, this.token.generation + 1) });
    if (this.active === path) {
      this.active = undefined;
      const next = this.paths.find((p) => p.usable);
      if (next) this.makeActivePath(next, `path ${path.name} failed`);
    }
    this.updateDeviceState(reason);
  }

  /** Fenceable: a new Primary's arbitration token becomes the term of every path's token. */
  fenceTerm(term: number): void {
    if (this.token && term > this.token.term) this.fenceAll({ term, generation: this.token.generation });
  }

  private fenceAll(token: FenceToken): void {
    this.token = token;
    for (const p of this.paths) if (presentsTokens(p.device)) p.device.fence(token);
    this.log.info({ term: token.term, generation: token.generation }, 'paths fenced with a new token');
  }

  private makeActivePath(path: Path, why: string): void {
    const previous = this.active;
    this.active = path;
    if (previous && previous !== path && previous.usable) this.setPathState(previous, 'standby', why);
    this.setPathState(path, 'active', why);
  }

  private setPathState(path: Path, state: PathState, reason: string): void {
    if (path.state === state) return;
    const from = path.state;
    path.state = state;
    const fields = { path: path.name, from, to: state, reason };
    if (state === 'failed') this.log.warn(fields, `path ${path.name} ${state}`);
    else this.log.info(fields, `path ${path.name} ${state}`);
    fabricEvents.pathState.publish({ device: this, name: this.name, path: path.name, from, to: state, reason });
  }

  private updateDeviceState(reason: string): void {
    const usable = this.paths.reduce((n, p) => n + (p.usable ? 1 : 0), 0);
    const state: DeviceState = usable === this.paths.length ? 'optimal' : usable === 0 ? 'failed' : 'degraded';
    if (state === this.state) return;
    const from = this.state;
    this.state = state;
    const fields = { from, to: state, usablePaths: usable, paths: this.paths.length };
    if (state === 'optimal') this.log.info(fields, `multipath device ${this.name} ${state}`);
    else this.log.warn(fields, `multipath device ${this.name} ${state}`);
    fabricEvents.deviceState.publish({ device: this, name: this.name, from, to: state, reason });
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

  private path(name: string): Path {
    const path = this.paths.find((p) => p.name === name);
    if (!path) throw new BlockError('EINVAL', `multipath ${this.name} has no path ${name}`);
    return path;
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
