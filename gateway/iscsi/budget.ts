/**
 * What one session may make the target hold, whatever its initiator does: the command
 * window (a fixed queue depth, RFC 7143 §4.2.2.1), the read data in flight, and the
 * solicited write data. Reads are bounded the way the NBD front end bounds them (stop
 * reading the socket); writes by not asking for their data (no R2T) until there is room.
 */

/** Commands a session may have outstanding: MaxCmdSN = ExpCmdSN + depth - 1 - outstanding. */
export const DEFAULT_QUEUE_DEPTH = 128;
/** Read data (Expected Data Transfer Length of reads) in flight per session before reading stops. */
export const MAX_DATA_IN_BYTES = 64 * 1024 * 1024;
/** Write data asked for by R2T and not yet written, per session. */
export const MAX_DATA_OUT_BYTES = 64 * 1024 * 1024;
/**
 * Replies waiting in one connection's socket before reading stops: an initiator that does
 * not read its responses stops being read (a little slack, so one big read response does
 * not stall the pipeline until it drains).
 */
export const MAX_UNSENT_BYTES = 4 * 1024 * 1024;

export class SessionBudget {
  /** Commands received (immediate ones included) and not yet answered. */
  outstanding = 0;
  dataIn = 0;
  dataOut = 0;
  /** Called when room frees up: paused connections resume, waiting writes get their R2Ts. */
  private readonly listeners = new Set<() => void>();
  private notifying = false;

  constructor(readonly queueDepth: number = DEFAULT_QUEUE_DEPTH) {}

  /** Every slot of the window is taken: an immediate command must be refused (TASK SET FULL). */
  get full(): boolean {
    return this.outstanding >= this.queueDepth;
  }

  /** Enough read data in flight: stop reading the session's sockets. */
  get readsFull(): boolean {
    return this.dataIn >= MAX_DATA_IN_BYTES;
  }

  /** A command takes a window slot and, for a read, its data. */
  admit(dataInBytes: number): void {
    this.outstanding++;
    this.dataIn += dataInBytes;
  }

  /** The command was answered (or aborted): its slot, read data and write reservation are free. */
  finish(dataInBytes: number, dataOutBytes: number): void {
    this.outstanding--;
    this.dataIn -= dataInBytes;
    this.dataOut -= dataOutBytes;
    // Later, not from inside whatever released the command (an abort loop, a response being
    // built): resuming reads PDUs, and those must not overtake the work in progress.
    if (this.notifying || this.listeners.size === 0) return;
    this.notifying = true;
    process.nextTick(() => {
      this.notifying = false;
      for (const l of [...this.listeners]) l();
    });
  }

  /**
   * Room to solicit `n` bytes of write data. One command always fits when nothing else is
   * reserved, so a write larger than the budget still makes progress.
   */
  reserveDataOut(n: number): boolean {
    if (this.dataOut > 0 && this.dataOut + n > MAX_DATA_OUT_BYTES) return false;
    this.dataOut += n;
    return true;
  }

  onRelease(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
