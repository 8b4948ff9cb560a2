import { basename, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ImageJobView } from '../image/job.js';
import type { ImageFormat } from '../image/qemu-img.js';
import { MemberUnreachableError, type ApiClient } from './api-client.js';
import { EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK } from './exit.js';
import { formatBytes, formatDuration } from '../api/present/format.js';
import { progressDisplay } from './progress-display.js';
import { renderTable } from './table.js';

/**
 * `blockgate image import|export|jobs|watch|cancel`: image jobs run by the member (the file is
 * on the member's host), started and followed through its management API.
 */

/** Consecutive failed polls before the CLI gives up following a job (the job itself goes on). */
const MAX_POLL_FAILURES = 5;

export interface ImageTransferOptions {
  readonly client: ApiClient;
  readonly exportName: string;
  /** As typed; made absolute against the working directory. */
  readonly file: string;
  readonly format?: ImageFormat;
  readonly overwrite?: boolean;
  /** Print the job and return instead of following it. */
  readonly detach?: boolean;
}

export async function imageTransfer(kind: 'image-import' | 'image-export', o: ImageTransferOptions): Promise<number> {
  const file = resolve(o.file);
  const request = {
    kind,
    export: o.exportName,
    file,
    ...(o.format !== undefined && { format: o.format }),
    ...(o.overwrite && { overwrite: true }),
  };
  const { body: job } = await o.client.post<ImageJobView>('/api/v1/jobs', request);
  if (o.detach) {
    process.stdout.write(`${job.id}\n`);
    return EXIT_OK;
  }
  return follow(o.client, job);
}

export async function imageWatch(client: ApiClient, id: string): Promise<number> {
  const { body } = await client.get<ImageJobView>(jobPath(id));
  return follow(client, body);
}

export async function imageCancel(client: ApiClient, id: string): Promise<number> {
  const { body } = await client.delete<ImageJobView>(jobPath(id));
  process.stdout.write(`${body.id}: ${body.state}\n`);
  return EXIT_OK;
}

export async function imageJobs(client: ApiClient, options: { json: boolean }): Promise<number> {
  const { body } = await client.get<{ jobs: ImageJobView[] }>('/api/v1/jobs');
  if (options.json) {
    process.stdout.write(`${JSON.stringify(body.jobs, null, 2)}\n`);
    return EXIT_OK;
  }
  if (body.jobs.length === 0) {
    process.stdout.write('no image jobs\n');
    return EXIT_OK;
  }
  const rows = body.jobs.map((j) => [
    j.id,
    j.kind.replace('image-', ''),
    j.state,
    j.export,
    `${percent(j)}%`,
    formatBytes(j.bytesTotal),
    j.state === 'running' ? `${formatBytes(j.bytesPerSecond)}/s` : '',
    j.state === 'running' ? formatDuration(j.etaSeconds) : '',
    j.file,
  ]);
  process.stdout.write(renderTable(['ID', 'KIND', 'STATE', 'EXPORT', 'DONE', 'SIZE', 'RATE', 'ETA', 'FILE'], rows));
  return EXIT_OK;
}

function jobPath(id: string): string {
  return `/api/v1/jobs/${encodeURIComponent(id)}`;
}

function percent(j: ImageJobView): number {
  return j.bytesTotal > 0 ? Math.floor((j.bytesDone / j.bytesTotal) * 100) : 100;
}

/** Poll the job until it ends, drawing its progress; Ctrl-C cancels it on the member. */
async function follow(client: ApiClient, first: ImageJobView): Promise<number> {
  const label = first.kind === 'image-import' ? `import ${basename(first.file)} -> ${first.export}` : `export ${first.export} -> ${basename(first.file)}`;
  const display = progressDisplay(label);
  const pollMs = process.stderr.isTTY ? 500 : 1000;
  let interrupted = false;
  const onInterrupt = (): void => {
    if (interrupted) process.exit(EXIT_INTERRUPTED);
    interrupted = true;
    process.stderr.write(`\ncancelling job ${first.id} (Ctrl-C again to leave it running)\n`);
    client.delete(jobPath(first.id)).catch(() => undefined);
  };
  process.on('SIGINT', onInterrupt);
  let job = first;
  try {
    let failures = 0;
    while (job.state === 'running') {
      display.update(job);
      await sleep(pollMs);
      try {
        job = (await client.get<ImageJobView>(jobPath(job.id))).body;
        failures = 0;
      } catch (err) {
        if (!(err instanceof MemberUnreachableError) || ++failures >= MAX_POLL_FAILURES) throw err;
      }
    }
    display.finish(job);
  } finally {
    process.off('SIGINT', onInterrupt);
  }
  return report(job, interrupted);
}

function report(job: ImageJobView, interrupted: boolean): number {
  const seconds = job.finishedAt ? (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000 : null;
  const io =
    job.kind === 'image-import'
      ? `${formatBytes(job.io.writtenBytes)} of data written, ${formatBytes(job.io.zeroedBytes)} zeroed without data`
      : `${formatBytes(job.io.readBytes)} of data read`;
  switch (job.state) {
    case 'succeeded': {
      const what = job.kind === 'image-import' ? `imported ${job.file} (${job.format}) onto export ${job.export}` : `exported ${job.export} to ${job.file} (${job.format})`;
      process.stdout.write(`${what}: ${formatBytes(job.bytesTotal)}, ${io}, in ${formatDuration(seconds)}\n`);
      return EXIT_OK;
    }
    case 'cancelled':
      process.stderr.write(`blockgate: job ${job.id} was cancelled${job.kind === 'image-import' ? `; export ${job.export} holds a partial image` : ''}\n`);
      return interrupted ? EXIT_INTERRUPTED : EXIT_FAILURE;
    default:
      process.stderr.write(`blockgate: job ${job.id} failed: ${job.error ?? 'unknown error'}\n`);
      return EXIT_FAILURE;
  }
}
