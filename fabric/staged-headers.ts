/**
 * Small protocol headers (NBD request headers, simple replies, chunk headers) encoded side by
 * side in one slab and handed to the socket together: a run of headers costs one
 * `socket.write` instead of one each. Every write through Node's stream machinery allocates
 * (the buffered entry, later a WriteWrap and the writev array) and costs about a microsecond;
 * at queue depth 32 that was a large share of a proxied request's own CPU.
 *
 * Bytes handed to the socket are never written again (the socket may still hold them): a full
 * slab is flushed and a fresh one started. A connection that never sends allocates none.
 *
 *   const at = staged.reserve(28);            // first: it may start a new slab
 *   staged.slab.writeUInt32BE(magic, at); …   // then encode into staged.slab at `at`
 *   staged.flush();                           // before any other write, and at the end of the turn
 */
export class StagedHeaders {
  /** Where reserved bytes are encoded; valid until the next reserve(). */
  slab: Buffer = EMPTY;
  /** First byte not yet handed to the sink. */
  private start = 0;
  /** End of the encoded bytes. */
  private end = 0;

  constructor(
    /** Takes a run of encoded bytes (socket.write). */
    private readonly sink: (bytes: Buffer) => void,
    private readonly slabSize = DEFAULT_SLAB,
  ) {}

  /** Room for `n` bytes in `slab`, at the offset returned; they leave with the next flush(). */
  reserve(n: number): number {
    if (this.end + n > this.slab.length) {
      this.flush();
      this.slab = Buffer.allocUnsafeSlow(Math.max(this.slabSize, n));
      this.start = this.end = 0;
    }
    const at = this.end;
    this.end += n;
    return at;
  }

  /** Bytes reserved and not yet flushed. */
  get pending(): number {
    return this.end - this.start;
  }

  /** Hand what was encoded since the last flush to the sink, as one buffer. */
  flush(): void {
    if (this.end === this.start) return;
    const bytes = this.slab.subarray(this.start, this.end);
    this.start = this.end;
    this.sink(bytes);
  }

  /** Forget what was encoded and not flushed (the socket is gone). */
  discard(): void {
    this.start = this.end;
  }
}

const EMPTY = Buffer.alloc(0);
/** 146 request headers or 256 simple replies; small enough for idle connections not to matter. */
const DEFAULT_SLAB = 4096;
