import { randomBytes, timingSafeEqual } from 'node:crypto';
import { HttpError } from './http-error.js';
import type { Role } from './tokens.js';

/**
 * The proof a forwarded change carries of who sent it. Each member has its own API tokens,
 * so the Primary cannot check the caller's token itself: the forwarding member checked it,
 * and says so in a header sealed with the cluster's shared key (an HMAC, as the peer
 * messages are sealed) over who forwarded it, the caller's role, the method, the path, the
 * time and a nonce. The Primary accepts a seal once (nonces are remembered while they are
 * fresh) and only within FRESH_MS, for that method and path. The bearer token goes along
 * too: the Primary prefers the seal when there is one.
 */
export const FORWARD_SEAL = 'x-blockgate-forward-seal';
const FRESH_MS = 30_000;
/** The nonces seen within FRESH_MS are kept: bounded by the rate of changes, which is low; capped all the same. */
const MAX_NONCES = 10_000;

/** HMAC-SHA256 of a text with the cluster's key, hex (ClusterServices.seal). */
export type Sealer = (text: string) => string;

export interface SealedCaller {
  readonly by: string;
  readonly role: Role;
}

function text(by: string, role: string, at: number, nonce: string, method: string, path: string): string {
  return ['blockgate-forward-v1', by, role, String(at), nonce, method, path].join('\n');
}

export function sealForward(seal: Sealer, caller: SealedCaller, method: string, path: string, now = Date.now()): string {
  const nonce = randomBytes(12).toString('hex');
  const fields = { by: caller.by, role: caller.role, at: String(now), nonce, mac: seal(text(caller.by, caller.role, now, nonce, method, path)) };
  return new URLSearchParams(fields).toString();
}

export class SealChecker {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly seal: Sealer,
    private readonly now: () => number = Date.now,
  ) {}

  /** The caller a seal vouches for; 401 for a seal that is forged, stale, replayed or for another request. */
  open(header: string, method: string, path: string): SealedCaller {
    const p = new URLSearchParams(header);
    const [by, role, at, nonce, mac] = ['by', 'role', 'at', 'nonce', 'mac'].map((k) => p.get(k) ?? '') as [string, string, string, string, string];
    const refuse = (why: string): never => {
      throw new HttpError(401, `forwarded request refused: ${why}`, { 'www-authenticate': 'Bearer realm="blockgate", error="invalid_token"' });
    };
    if ((role !== 'admin' && role !== 'read') || !/^\d+$/.test(at) || !/^[0-9a-f]{24}$/.test(nonce)) refuse('malformed seal');
    const expected = Buffer.from(this.seal(text(by, role, Number(at), nonce, method, path)), 'hex');
    const given = Buffer.from(mac, 'hex');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) refuse('the seal does not match (another cluster key, or altered)');
    const now = this.now();
    if (Math.abs(now - Number(at)) > FRESH_MS) refuse(`the seal is ${Math.round((now - Number(at)) / 1000)} s old (clocks apart, or replayed)`);
    for (const [n, t] of this.seen) if (now - t > FRESH_MS || this.seen.size > MAX_NONCES) this.seen.delete(n);
    if (this.seen.has(nonce)) refuse('the seal was used already');
    this.seen.set(nonce, now);
    return { by, role: role as Role };
  }
}
