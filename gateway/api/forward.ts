import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import { logger } from '../../fabric/log.js';
import { ApiClient, ApiError, MemberUnreachableError, parseMemberAddress } from '../cli/api-client.js';
import { FORWARD_SEAL, SealChecker, sealForward, type Sealer } from './forward-seal.js';
import type { ApiReply } from './jobs.js';
import type { Role } from './tokens.js';

/**
 * Management requests load-balanced: every member answers reads itself, and a change that
 * belongs to a failover set's Primary (the cluster's configuration: the cluster set's;
 * an action on a set's device: that set's), sent to another member, is forwarded to the
 * Primary over its management API and the Primary's answer returned. The caller was
 * admitted here (its token, its role); the forwarded request carries the caller's role
 * sealed with the cluster's key (forward-seal.ts: each member has its own tokens) and the
 * caller's token, and the forwarder names itself in a hop header: a forwarded
 * request reaching a member that is not (or no longer) Primary is answered 503 with
 * Retry-After, never forwarded again, so requests cannot loop. While the set fails over
 * (no Primary known, the Primary's connection refused, or it answers that it is no longer
 * Primary) the change waits for the next Primary, up to a bound; then 503 + Retry-After.
 * A Primary that took the request and then stopped answering may have made the change:
 * that is 502, never a second send.
 */

/** The hop header: the member that forwarded the request. */
export const FORWARDED_BY = 'x-blockgate-forwarded-by';
/** On a forwarded answer: the member that made the change. */
export const ANSWERED_BY = 'x-blockgate-answered-by';
/** On a 503: the member is not the set's Primary (a forwarder then looks for the new one). */
export const NOT_PRIMARY = 'x-blockgate-not-primary';

/** Who is the Primary of each set, as this member sees it. */
export interface PrimaryDirectory {
  /** This member's id. */
  readonly member: string;
  /** The set whose Primary makes configuration changes (the cluster set), if any. */
  readonly configSet?: string;
  /** The set that serves device `name`'s exports, if any. */
  setOfDevice(name: string): string | undefined;
  /**
   * The set's Primary now and where its management API is reached (undefined: none known or
   * heard, the set is failing over; no address: reached from its own host only).
   */
  primaryOf(set: string): { readonly member: string; readonly apis: readonly string[] } | undefined;
  /** The configuration generation this member holds: a forwarded change is answered once it holds the new one too. */
  generation?(): number | undefined;
  /** Seals a forwarded change with the cluster's key (forward-seal.ts). */
  readonly seal: Sealer;
}

export interface ForwardOptions {
  /** How long a change waits for a Primary during a failover (default 10 s). */
  readonly waitMs?: number;
  /** The time limit of the Primary's answer (default 30 s: an apply may restart the member's devices). */
  readonly timeoutMs?: number;
  /** How long a forwarded configuration change waits for this member to hold its generation (default 10 s). */
  readonly catchUpMs?: number;
}

const CONFIG_CHANGE = /^\/api\/v1\/config(?:\/(?:apply|rollback))?\/?$/;
const DEVICE_ACTION = /^\/api\/v1\/devices\/([^/]+)\/actions\/[^/]+$/;
const POLL_MS = 100;
const RETRY_AFTER_S = 2;

const log = logger('api-forward');

export class Forwarder {
  /** Admits the changes other members forward here. */
  readonly seals: SealChecker;

  constructor(
    private readonly directory: PrimaryDirectory,
    private readonly options: ForwardOptions = {},
  ) {
    this.seals = new SealChecker(directory.seal);
  }

  /** The set whose Primary must make this request, or undefined when any member answers it itself. */
  ownerOf(method: string, path: string): string | undefined {
    if (method === 'GET' || method === 'HEAD') return undefined;
    if (CONFIG_CHANGE.test(path) && (method === 'PUT' || path !== '/api/v1/config')) return this.directory.configSet;
    const action = DEVICE_ACTION.exec(path);
    if (action) {
      try {
        return this.directory.setOfDevice(decodeURIComponent(action[1]!));
      } catch {
        return undefined;
      }
    }
    return undefined;
  }

  /**
   * Send the change to `set`'s Primary and return its answer, or `local` when this member is
   * that Primary (or becomes it while waiting) and handles the request itself.
   */
  async forward(req: IncomingMessage, set: string, body: unknown, caller: Role): Promise<ApiReply | 'local'> {
    const self = this.directory.member;
    const hop = req.headers[FORWARDED_BY];
    const deadline = performance.now() + (this.options.waitMs ?? 10_000);
    const path = req.url ?? '/';
    const method = req.method ?? 'POST';
    let last = 'no Primary is known';
    if (hop === self) {
      return { status: 508, body: { error: `${self} received a change it forwarded itself: the Primary's announced API address leads back here; give each member an API address the others reach (api.listen)`, code: 'ELOOP' } };
    }
    for (;;) {
      const primary = this.directory.primaryOf(set);
      if (primary?.member === self) return 'local';
      if (hop !== undefined) {
        // The sender took this member for the Primary: it is not (or no longer). Never forwarded twice.
        return notPrimary(`${self} is not the Primary of set ${set} (the request was forwarded by ${String(hop)}): retry`, primary?.member);
      }
      // A Primary whose API is on loopback cannot be reached from here: the change is handled
      // here (a configuration change still reaches the Primary, over the management networks).
      if (primary && primary.apis.length === 0) return 'local';
      for (const api of primary?.apis ?? []) {
        const outcome = await this.send(primary!.member, api, method, path, { authorization: req.headers.authorization, caller }, body);
        if (outcome.reply) return this.settled(set, outcome.reply);
        last = outcome.retry;
      }
      if (performance.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    log.warn({ set, path, last }, 'change not forwarded: no Primary answered in time');
    return {
      status: 503,
      body: { error: `no Primary of set ${set} took the change within ${this.options.waitMs ?? 10_000} ms (${last}); nothing was changed: retry`, code: 'ENOPRIMARY' },
      headers: { 'retry-after': String(RETRY_AFTER_S) },
    };
  }

  /** A configuration change made: answered once this member holds it too (the caller may read it back here). */
  private async settled(set: string, reply: ApiReply): Promise<ApiReply> {
    const made = (reply.body as { generation?: unknown } | undefined)?.generation;
    if (set !== this.directory.configSet || reply.status >= 300 || typeof made !== 'number' || !this.directory.generation) return reply;
    const deadline = performance.now() + (this.options.catchUpMs ?? 10_000);
    while ((this.directory.generation() ?? 0) < made && performance.now() < deadline) await new Promise((r) => setTimeout(r, POLL_MS));
    return reply;
  }

  /** One attempt: the Primary's answer, or why to look for the Primary again. */
  private async send(member: string, api: string, method: string, path: string, from: { authorization: string | undefined; caller: Role }, body: unknown): Promise<{ reply?: ApiReply; retry: string }> {
    const token = /^Bearer[ ]+([^ ]+)[ ]*$/i.exec(from.authorization ?? '')?.[1];
    const by = this.directory.member;
    const client = new ApiClient({
      member: parseMemberAddress(api),
      ...(token !== undefined && { token }),
      timeoutMs: this.options.timeoutMs ?? 30_000,
      headers: { [FORWARDED_BY]: by, [FORWARD_SEAL]: sealForward(this.directory.seal, { by, role: from.caller }, method, path) },
    });
    const answeredBy = { [ANSWERED_BY]: member };
    try {
      const answer = await client.request(method, path, body);
      log.info({ path, primary: member, status: answer.status }, 'change forwarded to the Primary');
      return { reply: { status: answer.status, body: answer.body, headers: answeredBy }, retry: '' };
    } catch (err) {
      if (err instanceof ApiError) {
        if (err.status === 503 && err.headers[NOT_PRIMARY] !== undefined) return { retry: `${member} is no longer Primary` };
        const retryAfter = err.headers['retry-after'];
        const refused = err.status === 401 && { error: `the Primary ${member}, where ${by} forwarded the change, refused it: ${err.message}` };
        return { reply: { status: err.status, body: refused || (err.body ?? { error: err.message }), headers: { ...answeredBy, ...(typeof retryAfter === 'string' && { 'retry-after': retryAfter }) } }, retry: '' };
      }
      if (err instanceof MemberUnreachableError && err.notSent) return { retry: `the Primary ${member} at ${api} cannot be reached` };
      log.warn({ err, path, primary: member }, 'the Primary stopped answering a forwarded change');
      return {
        reply: {
          status: 502,
          body: { error: `the Primary ${member} (${api}) took the change and did not answer: ${(err as Error).message}. It may have been made: look before sending it again`, code: 'EFORWARD' },
        },
        retry: '',
      };
    }
  }
}

/** The answer of a member that is not the set's Primary to a forwarded change. */
export function notPrimary(message: string, primary: string | undefined): ApiReply {
  return {
    status: 503,
    body: { error: message, code: 'ENOTPRIMARY', ...(primary !== undefined && { primary }) },
    headers: { 'retry-after': '1', [NOT_PRIMARY]: '1' },
  };
}
