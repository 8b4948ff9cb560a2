import { SingleBar } from 'cli-progress';
import { formatBytes, formatDuration } from '../api/present/format.js';

/** How far long work has got, as the API reports it (a job's progress fields). */
export interface Progress {
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly bytesPerSecond: number;
  readonly etaSeconds: number | null;
}

export interface ProgressDisplay {
  update(p: Progress): void;
  /** The last state; the display is done after this. */
  finish(p: Progress): void;
}

/** A plain line is printed at every further tenth, and at least this often. */
const LINE_EVERY_MS = 15_000;

/**
 * A progress bar with size, rate and ETA on a terminal (cli-progress); on anything else
 * (a log, a pipe, CI) plain lines, one per tenth of the work, so the output reads as a log.
 * The rate and ETA are the member's (a sliding window), not guessed here.
 */
export function progressDisplay(label: string, stream: NodeJS.WriteStream = process.stderr): ProgressDisplay {
  return stream.isTTY ? new BarDisplay(label, stream) : new LineDisplay(label, stream);
}

/** `eta` would be cli-progress's own token (its estimate, in bare seconds): the member's is `remaining`. */
function describe(p: Progress): { done: string; size: string; rate: string; remaining: string } {
  return {
    done: formatBytes(p.bytesDone),
    size: formatBytes(p.bytesTotal),
    rate: `${formatBytes(p.bytesPerSecond)}/s`,
    remaining: formatDuration(p.etaSeconds),
  };
}

class BarDisplay implements ProgressDisplay {
  private readonly bar: SingleBar;
  private started = false;

  constructor(label: string, stream: NodeJS.WriteStream) {
    this.bar = new SingleBar({
      format: `${label} [{bar}] {percentage}% | {done} of {size} | {rate} | ETA {remaining}`,
      stream,
      hideCursor: true,
      barsize: 30,
      fps: 5,
    });
  }

  update(p: Progress): void {
    const total = Math.max(1, p.bytesTotal);
    if (!this.started) {
      this.bar.start(total, p.bytesDone, describe(p));
      this.started = true;
    } else {
      this.bar.setTotal(total);
      this.bar.update(p.bytesDone, describe(p));
    }
  }

  finish(p: Progress): void {
    this.update(p);
    this.bar.stop();
  }
}

class LineDisplay implements ProgressDisplay {
  private lastTenth = -1;
  private lastLineAt = 0;

  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WritableStream,
  ) {}

  update(p: Progress): void {
    const tenth = p.bytesTotal > 0 ? Math.floor((p.bytesDone / p.bytesTotal) * 10) : 0;
    const now = Date.now();
    if (tenth > this.lastTenth || now - this.lastLineAt >= LINE_EVERY_MS) this.line(p, true);
    this.lastTenth = Math.max(this.lastTenth, tenth);
  }

  finish(p: Progress): void {
    this.line(p, false);
  }

  private line(p: Progress, running: boolean): void {
    this.lastLineAt = Date.now();
    const d = describe(p);
    const pct = p.bytesTotal > 0 ? Math.floor((p.bytesDone / p.bytesTotal) * 100) : 100;
    const tail = running ? `, ${d.rate}, ETA ${d.remaining}` : '';
    this.stream.write(`${this.label}: ${pct}% ${d.done} of ${d.size}${tail}\n`);
  }
}
