import { spawn } from 'node:child_process';
import { JobError } from './errors.js';

/**
 * qemu-img, the converter image jobs run: it reads and writes raw, qcow2 and vmdk, skips
 * holes (block status on the source, zero detection on the data) and reports progress.
 * Driven as a child process; nothing of it is reimplemented here.
 */

/** The image formats `blockgate image` accepts; qemu-img knows more, these are the tested ones. */
export const IMAGE_FORMATS = ['raw', 'qcow2', 'vmdk'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

export function isImageFormat(value: unknown): value is ImageFormat {
  return typeof value === 'string' && (IMAGE_FORMATS as readonly string[]).includes(value);
}

export interface ImageInfo {
  readonly format: string;
  readonly virtualSize: number;
  readonly backingFile?: string;
}

/** What qemu-img is called; tests and unusual installs may point elsewhere. */
function qemuImg(): string {
  return process.env.BLOCKGATE_QEMU_IMG ?? 'qemu-img';
}

/** `qemu-img info`: the format (probed unless given) and the virtual size. */
export async function imageInfo(file: string, format?: ImageFormat): Promise<ImageInfo> {
  const { stdout } = await run(['info', '--output=json', ...(format ? ['-f', format] : []), file]);
  const info = JSON.parse(stdout) as { format?: unknown; 'virtual-size'?: unknown; 'backing-filename'?: unknown };
  if (typeof info.format !== 'string' || typeof info['virtual-size'] !== 'number') {
    throw new JobError('failed', `qemu-img info ${file}: unexpected output`);
  }
  return {
    format: info.format,
    virtualSize: info['virtual-size'],
    ...(typeof info['backing-filename'] === 'string' && { backingFile: info['backing-filename'] }),
  };
}

/** A qemu-img block-driver description of an NBD export on a Unix socket, as a json: filename. */
export function nbdUnixTarget(socketPath: string, exportName: string): string {
  return `json:${JSON.stringify({ driver: 'raw', file: { driver: 'nbd', server: { type: 'unix', path: socketPath }, export: exportName } })}`;
}

export interface ConvertOptions {
  readonly source: string;
  readonly sourceFormat: string;
  readonly target: string;
  readonly targetFormat: string;
  /** The target is there already (an export): write into it rather than create it. */
  readonly targetExists: boolean;
  /** Called with 0..100 as qemu-img reports it (steps of about 1%). */
  readonly onPercent: (percent: number) => void;
  readonly signal: AbortSignal;
}

/**
 * `qemu-img convert -p`: zero regions of the source become zero writes (or nothing, for a
 * new sparse file), never data. -W lets it keep several writes in flight out of order.
 */
export async function convert(o: ConvertOptions): Promise<void> {
  const args = ['convert', '-p', '-W', '-f', o.sourceFormat, '-O', o.targetFormat];
  if (o.targetExists) args.push('-n');
  args.push(o.source, o.target);
  await run(args, { signal: o.signal, onStdout: progressParser(o.onPercent) });
}

/** qemu-img -p writes `    (12.34/100%)\r` to stdout, one per step. */
function progressParser(onPercent: (percent: number) => void): (chunk: string) => void {
  let pending = '';
  return (chunk) => {
    pending += chunk;
    const parts = pending.split(/[\r\n]/);
    pending = parts.pop()!;
    for (const part of parts) {
      const m = /\((\d+(?:\.\d+)?)\/100%\)/.exec(part);
      if (m) onPercent(Number(m[1]));
    }
  };
}

interface RunOptions {
  readonly signal?: AbortSignal;
  readonly onStdout?: (chunk: string) => void;
}

/** Run qemu-img; reject with its last stderr line when it fails. */
function run(args: string[], options: RunOptions = {}): Promise<{ stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(qemuImg(), args, { stdio: ['ignore', 'pipe', 'pipe'], ...(options.signal && { signal: options.signal }) });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (options.onStdout) options.onStdout(d);
      else stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      // Only the end matters for the error message; keep memory bounded.
      stderr = (stderr + d).slice(-4096);
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (err.name === 'AbortError') reject(new JobError('cancelled', 'cancelled'));
      else if (err.code === 'ENOENT') reject(new JobError('unavailable', `${qemuImg()} not found: install qemu-utils`));
      else reject(err);
    });
    child.once('close', (code, signal) => {
      if (code === 0) return resolve({ stdout });
      if (options.signal?.aborted) return reject(new JobError('cancelled', 'cancelled'));
      const message = stderr.trim().split('\n').pop() ?? '';
      reject(new JobError('failed', `qemu-img ${args[0]} failed (${signal ?? `exit ${code}`}): ${message.replace(/^qemu-img: /, '')}`));
    });
  });
}
