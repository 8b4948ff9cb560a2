import { mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FabricSwitch } from '../../fabric/switch.js';
import { logger } from '../../fabric/log.js';
import type { IoStats } from '../../fabric/stats.js';
import { NbdServer } from '../nbd/server.js';
import { JobError } from './errors.js';
import { ProgressMeter } from './progress-meter.js';
import { convert, nbdUnixTarget } from './qemu-img.js';

export type ImageJobKind = 'image-import' | 'image-export';
export type ImageJobState = 'running' | 'succeeded' | 'failed' | 'cancelled';

/** A job as it was checked and planned by ImageJobs: nothing left to decide. */
export interface ImageJobPlan {
  readonly kind: ImageJobKind;
  readonly export: string;
  /** Absolute path on the member's host. */
  readonly file: string;
  /** The file's format (the source's for an import, the one written for an export). */
  readonly format: string;
  /** The bytes the converter walks through: the image's virtual size, or the export's size. */
  readonly bytesTotal: number;
}

/** What the API returns for a job; the dashboard draws it. */
export interface ImageJobView extends ImageJobPlan {
  readonly id: string;
  readonly state: ImageJobState;
  readonly bytesDone: number;
  readonly bytesPerSecond: number;
  readonly etaSeconds: number | null;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly error: string | null;
  /**
   * What crossed the export during the job: `writtenBytes` of data, `zeroedBytes` written as
   * zeroes or trimmed without data, `readBytes` read. An import of a sparse image writes
   * data only where the image has some.
   */
  readonly io: { readonly readBytes: number; readonly writtenBytes: number; readonly zeroedBytes: number };
}

const log = logger('image');

/**
 * One image import or export, running from construction: qemu-img converts between the file
 * and the export, reaching the export through an NBD server of its own on a private Unix
 * socket (so it works whatever listeners the member has, and its I/O is counted apart).
 */
export class ImageJob {
  readonly done: Promise<void>;
  private state: ImageJobState = 'running';
  private error: string | null = null;
  private finishedAt: Date | null = null;
  private readonly startedAt = new Date();
  private readonly meter: ProgressMeter;
  private readonly abort = new AbortController();
  private readonly portId: string;
  private io = { readBytes: 0, writtenBytes: 0, zeroedBytes: 0 };

  constructor(
    readonly id: string,
    readonly plan: ImageJobPlan,
    private readonly fabric: FabricSwitch,
  ) {
    this.meter = new ProgressMeter(plan.bytesTotal);
    this.portId = `image-job:${id}`;
    log.info({ job: id, ...plan }, 'image job started');
    this.done = this.run().then(
      () => this.finish('succeeded', null),
      (err: unknown) => {
        if (err instanceof JobError && err.reason === 'cancelled') this.finish('cancelled', 'cancelled');
        else this.finish('failed', err instanceof Error ? err.message : String(err));
      },
    );
  }

  get running(): boolean {
    return this.state === 'running';
  }

  /** Stop the converter; `done` settles once it has exited and the socket is gone. */
  cancel(): Promise<void> {
    this.abort.abort();
    return this.done;
  }

  view(): ImageJobView {
    const p = this.meter.snapshot();
    const io = this.running ? countersOf(this.fabric.portStats.get(this.portId)) : this.io;
    return {
      id: this.id,
      ...this.plan,
      state: this.state,
      bytesDone: p.bytesDone,
      bytesPerSecond: this.running ? p.bytesPerSecond : 0,
      etaSeconds: this.running ? p.etaSeconds : null,
      startedAt: this.startedAt.toISOString(),
      finishedAt: this.finishedAt?.toISOString() ?? null,
      error: this.error,
      io,
    };
  }

  private async run(): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'blockgate-image-'));
    const socketPath = join(dir, 'nbd.sock');
    const server = new NbdServer({ fabric: this.fabric, listen: [{ socketPath }], id: this.portId });
    const partial = `${this.plan.file}.part-${this.id}`;
    try {
      await server.start();
      const exportTarget = nbdUnixTarget(socketPath, this.plan.export);
      const onPercent = (pct: number): void => this.meter.update(Math.round((pct / 100) * this.plan.bytesTotal));
      if (this.plan.kind === 'image-import') {
        await convert({
          source: this.plan.file,
          sourceFormat: this.plan.format,
          target: exportTarget,
          targetFormat: 'raw',
          targetExists: true,
          onPercent,
          signal: this.abort.signal,
        });
      } else {
        // Written beside the final name and renamed when complete: a failed or cancelled
        // export never leaves a truncated file under the name asked for.
        await convert({
          source: exportTarget,
          sourceFormat: 'raw',
          target: partial,
          targetFormat: this.plan.format,
          targetExists: false,
          onPercent,
          signal: this.abort.signal,
        });
        await rename(partial, this.plan.file);
      }
      this.meter.update(this.plan.bytesTotal);
    } finally {
      await server.stop({ drainMs: 1000 });
      this.io = countersOf(this.fabric.portStats.get(this.portId));
      this.fabric.portStats.delete(this.portId);
      await rm(dir, { recursive: true, force: true });
      if (this.plan.kind === 'image-export') await rm(partial, { force: true });
    }
  }

  private finish(state: ImageJobState, error: string | null): void {
    this.state = state;
    this.error = error;
    this.finishedAt = new Date();
    const fields = { job: this.id, kind: this.plan.kind, export: this.plan.export, file: this.plan.file, io: this.io };
    if (state === 'failed') log.warn({ ...fields, error }, 'image job failed');
    else log.info(fields, `image job ${state}`);
  }
}

function countersOf(stats: IoStats | undefined): ImageJobView['io'] {
  const bytes = (op: 'read' | 'write' | 'writeZeroes' | 'trim'): number => stats?.byOp.get(op)?.bytes ?? 0;
  return { readBytes: bytes('read'), writtenBytes: bytes('write'), zeroedBytes: bytes('writeZeroes') + bytes('trim') };
}
