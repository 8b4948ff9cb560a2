import type { Logger } from '../fabric/log.js';

/** Work a set starts and does not wait for (promotions, probes, saves): logged if it fails, awaitable. */
export class BackgroundWork {
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly log: Logger) {}

  track(p: Promise<unknown>): void {
    const tracked = p.catch((err: unknown) => this.log.error({ err: err instanceof Error ? err.message : String(err) }, 'failover task failed'));
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
  }

  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }
}
