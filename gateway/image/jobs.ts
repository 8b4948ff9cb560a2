import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { dirname, extname, isAbsolute } from 'node:path';
import type { FabricSwitch } from '../../fabric/switch.js';
import { JobError } from './errors.js';
import { ImageJob, type ImageJobKind, type ImageJobPlan, type ImageJobView } from './job.js';
import { IMAGE_FORMATS, imageInfo, isImageFormat, type ImageFormat } from './qemu-img.js';

/** A request to start a job, as the API receives it (checked here, field by field). */
export interface ImageJobRequest {
  readonly kind: ImageJobKind;
  readonly export: string;
  readonly file: string;
  /** Import: the file's format (default: probed). Export: the format to write (default: from the extension, else raw). */
  readonly format?: ImageFormat;
  /** Export only: replace an existing file. */
  readonly overwrite?: boolean;
}

/** Finished jobs are kept for the dashboard and for `blockgate image` to read the outcome. */
const KEEP_FINISHED = 20;

/**
 * The member's image jobs: checks a request against the member's state before anything
 * starts (so mistakes are answered at once, not as a failed job), runs at most one job per
 * export, and keeps the last finished ones.
 */
export class ImageJobs {
  private readonly jobs = new Map<string, ImageJob>();
  private closed = false;

  constructor(private readonly fabric: FabricSwitch) {}

  async start(request: ImageJobRequest): Promise<ImageJobView> {
    if (this.closed) throw new JobError('conflict', 'the member is stopping');
    const plan = await this.plan(request);
    // Checked again after the awaits above: another request may have started meanwhile.
    this.assertExportIdle(plan.export);
    const job = new ImageJob(randomUUID(), plan, this.fabric);
    this.jobs.set(job.id, job);
    void job.done.then(() => this.prune());
    return job.view();
  }

  get(id: string): ImageJobView {
    return this.job(id).view();
  }

  /** Newest first. */
  list(): ImageJobView[] {
    return [...this.jobs.values()].reverse().map((j) => j.view());
  }

  /** Stop a running job; answers with its final view. Cancelling a finished job is refused. */
  async cancel(id: string): Promise<ImageJobView> {
    const job = this.job(id);
    if (!job.running) throw new JobError('conflict', `job ${id} has already ${job.view().state}`);
    await job.cancel();
    return job.view();
  }

  /** Member stop: cancel what runs and wait for it. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.jobs.values()].filter((j) => j.running).map((j) => j.cancel()));
  }

  /** Forget the oldest finished jobs beyond KEEP_FINISHED (a Map iterates oldest first). */
  private prune(): void {
    const finished = [...this.jobs.values()].filter((j) => !j.running);
    for (const j of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) this.jobs.delete(j.id);
  }

  private job(id: string): ImageJob {
    const job = this.jobs.get(id);
    if (!job) throw new JobError('not-found', `no job ${JSON.stringify(id)}`);
    return job;
  }

  private assertExportIdle(exportName: string): void {
    const busy = [...this.jobs.values()].find((j) => j.running && j.plan.export === exportName);
    if (busy) throw new JobError('conflict', `export ${JSON.stringify(exportName)} is busy with job ${busy.id} (${busy.plan.kind})`);
  }

  private async plan(r: ImageJobRequest): Promise<ImageJobPlan> {
    if (r.kind !== 'image-import' && r.kind !== 'image-export') throw new JobError('invalid', 'kind must be image-import or image-export');
    if (typeof r.export !== 'string' || r.export === '') throw new JobError('invalid', 'export must be a non-empty string');
    if (typeof r.file !== 'string' || !isAbsolute(r.file)) throw new JobError('invalid', 'file must be an absolute path on the member');
    if (r.format !== undefined && !isImageFormat(r.format)) throw new JobError('invalid', `format must be one of ${IMAGE_FORMATS.join(', ')}`);
    if (r.overwrite !== undefined && typeof r.overwrite !== 'boolean') throw new JobError('invalid', 'overwrite must be true or false');
    const entry = this.fabric.lookupExport(r.export);
    if (!entry) throw new JobError('not-found', `no export named ${JSON.stringify(r.export)}`);
    this.assertExportIdle(r.export);
    const base = { kind: r.kind, export: r.export, file: r.file };

    if (r.kind === 'image-import') {
      if (entry.readOnly) throw new JobError('conflict', `export ${JSON.stringify(r.export)} is read-only`);
      const kind = await fileKind(r.file);
      if (kind !== 'file' && kind !== 'block-device') throw new JobError('invalid', `${r.file}: ${kind === 'missing' ? 'no such file on the member' : 'not a file'}`);
      const info = await imageInfo(r.file, r.format).catch((err: unknown) => {
        // A file qemu-img cannot read as an image is the request's fault, not the member's.
        throw err instanceof JobError && err.reason === 'failed' ? new JobError('invalid', err.message) : err;
      });
      if (!isImageFormat(info.format)) {
        throw new JobError('invalid', `${r.file} is a ${info.format} image; supported: ${IMAGE_FORMATS.join(', ')}`);
      }
      if (info.virtualSize > entry.device.size) {
        throw new JobError(
          'conflict',
          `${r.file} holds ${info.virtualSize} bytes, more than export ${JSON.stringify(r.export)} (${entry.device.size} bytes)`,
        );
      }
      return { ...base, format: info.format, bytesTotal: info.virtualSize };
    }

    if ((await fileKind(dirname(r.file))) !== 'directory') throw new JobError('invalid', `${dirname(r.file)}: no such directory on the member`);
    const existing = await fileKind(r.file);
    if (existing === 'directory') throw new JobError('invalid', `${r.file} is a directory`);
    if (existing !== 'missing' && r.overwrite !== true) throw new JobError('conflict', `${r.file} exists (set overwrite to replace it)`);
    return { ...base, format: r.format ?? formatFromName(r.file), bytesTotal: entry.device.size };
  }
}

/** `disk.qcow2` → qcow2, `disk.vmdk` → vmdk, anything else raw. */
export function formatFromName(file: string): ImageFormat {
  const ext = extname(file).slice(1).toLowerCase();
  return isImageFormat(ext) ? ext : 'raw';
}

async function fileKind(path: string): Promise<'missing' | 'file' | 'directory' | 'block-device' | 'other'> {
  try {
    const s = await stat(path);
    return s.isFile() ? 'file' : s.isDirectory() ? 'directory' : s.isBlockDevice() ? 'block-device' : 'other';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw new JobError('invalid', `${path}: ${(err as Error).message}`);
  }
}
