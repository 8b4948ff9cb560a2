/**
 * Runs an idempotent "write current state to disk" job at most once at a time. A caller
 * arriving while a run is under way waits for the next run (which sees its change); all
 * callers arriving meanwhile share that one run, so a burst of changes costs two writes.
 */
export class SerialFlush {
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  constructor(private readonly job: () => Promise<void>) {}

  request(): Promise<void> {
    if (this.queued) return this.queued;
    if (this.running) {
      this.queued = this.running.then(noop, noop).then(() => {
        this.queued = undefined;
        return this.start();
      });
      return this.queued;
    }
    return this.start();
  }

  /** Resolves once nothing is running or queued (errors are the requesters' business). */
  async idle(): Promise<void> {
    while (this.running || this.queued) await (this.queued ?? this.running)!.then(noop, noop);
  }

  private start(): Promise<void> {
    const run: Promise<void> = this.job().finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }
}

function noop(): void {}
