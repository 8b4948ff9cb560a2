import type { IncomingMessage, ServerResponse } from 'node:http';
import { logger } from '../../fabric/log.js';
import { SECURITY_HEADERS } from './headers.js';
import { HttpError } from './http-error.js';
import type { RateSampler, Sample } from './sampler.js';

/**
 * GET /api/v1/live: a Server-Sent Events stream for the dashboard (and `curl -N`).
 *
 *   event: hello    {intervalMs, keepMs}                once
 *   event: history  [Sample, …]                         once: the last five minutes
 *   event: sample   Sample                              every interval
 *   event: state    whatever `state()` returns          every interval, after the sample
 *
 * Each frame is rendered once per tick and written to every client. A client that does
 * not read (its unsent data passes `maxBufferedBytes`) is dropped rather than buffered
 * without bound, and the number of streams is capped: each costs a socket.
 */
export interface LiveStreamOptions {
  readonly sampler: RateSampler;
  /** The member's state as the dashboard renders it (status, sessions, jobs…). */
  state(): unknown;
  readonly maxClients?: number;
  readonly maxBufferedBytes?: number;
}

const log = logger('api-live');

export class LiveStream {
  private readonly clients = new Set<ServerResponse>();
  private unsubscribe: (() => void) | undefined;
  private readonly maxClients: number;
  private readonly maxBuffered: number;

  constructor(private readonly options: LiveStreamOptions) {
    this.maxClients = options.maxClients ?? 32;
    this.maxBuffered = options.maxBufferedBytes ?? 4 * 1024 * 1024;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  open(req: IncomingMessage, res: ServerResponse): void {
    if (this.clients.size >= this.maxClients) throw new HttpError(503, `too many live streams open (${this.maxClients})`, { 'retry-after': '5' });
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // Reverse proxies (nginx) would otherwise hold the frames back.
      'x-accel-buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    const { sampler } = this.options;
    res.write(frame('hello', { intervalMs: sampler.intervalMs, keepMs: sampler.history().length * sampler.intervalMs }));
    res.write(frame('history', sampler.history()));
    res.write(frame('state', this.options.state()));
    this.clients.add(res);
    req.on('close', () => this.clients.delete(res));
    res.on('close', () => this.clients.delete(res));
    this.unsubscribe ??= sampler.subscribe((sample) => this.broadcast(sample));
  }

  /** End every stream (the API is stopping). */
  closeAll(): void {
    for (const res of this.clients) res.end();
    this.clients.clear();
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  private broadcast(sample: Sample): void {
    if (this.clients.size === 0) return;
    let text: string;
    try {
      text = frame('sample', sample) + frame('state', this.options.state());
    } catch (err) {
      log.warn({ err }, 'live state could not be rendered');
      return;
    }
    for (const res of this.clients) {
      if (res.writableLength > this.maxBuffered) {
        log.info({ buffered: res.writableLength }, 'live stream client not reading: dropped');
        this.clients.delete(res);
        res.destroy();
        continue;
      }
      res.write(text);
    }
  }
}

function frame(event: string, data: unknown): string {
  // JSON has no raw newlines, so one `data:` line carries the whole value.
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
