import { createHash, randomBytes, randomInt } from 'node:crypto';
import { decodeBinary, decodeNumber, encodeHex, type TextPairs } from './text.js';

/**
 * CHAP as iSCSI uses it (RFC 7143 §12.1.3, RFC 1994): MD5 only (CHAP_A=5), the target
 * challenges the initiator and, for mutual CHAP, answers the initiator's challenge. A
 * challenge the initiator reflects back at us is refused (§12.1.3: reflection attacks).
 */

export const CHAP_MD5 = 5;
const CHALLENGE_BYTES = 16;

export interface ChapCredentials {
  readonly user: string;
  readonly secret: string;
  readonly mutualUser?: string;
  readonly mutualSecret?: string;
}

export class ChapFailure extends Error {
  override readonly name = 'ChapFailure';
}

export function chapResponse(id: number, secret: string | Buffer, challenge: Buffer): Buffer {
  return createHash('md5').update(Buffer.from([id])).update(secret).update(challenge).digest();
}

type State = 'algorithm' | 'response' | 'done';

/** The target side of one CHAP exchange. `step` returns the keys to send back. */
export class ChapAuthenticator {
  private state: State = 'algorithm';
  private id = 0;
  private challenge = Buffer.alloc(0);

  constructor(private readonly credentials: ChapCredentials) {}

  get done(): boolean {
    return this.state === 'done';
  }

  step(keys: Map<string, string>): TextPairs {
    if (this.state === 'algorithm') {
      const offered = keys.get('CHAP_A');
      if (offered === undefined) return [];
      const algorithms = offered.split(',').map((v) => decodeNumber(v));
      if (!algorithms.includes(CHAP_MD5)) throw new ChapFailure(`no supported CHAP algorithm in CHAP_A=${offered}`);
      this.id = randomInt(256);
      this.challenge = randomBytes(CHALLENGE_BYTES);
      this.state = 'response';
      return [
        ['CHAP_A', String(CHAP_MD5)],
        ['CHAP_I', String(this.id)],
        ['CHAP_C', encodeHex(this.challenge)],
      ];
    }
    if (this.state === 'response') {
      const name = keys.get('CHAP_N');
      const response = keys.get('CHAP_R');
      if (name === undefined || response === undefined) throw new ChapFailure('CHAP_N and CHAP_R expected');
      const got = decodeBinary(response);
      if (!got) throw new ChapFailure('malformed CHAP_R');
      if (name !== this.credentials.user) throw new ChapFailure(`unknown CHAP user ${JSON.stringify(name)}`);
      const want = chapResponse(this.id, this.credentials.secret, this.challenge);
      if (got.length !== want.length || !got.equals(want)) throw new ChapFailure(`wrong CHAP response for ${name}`);
      this.state = 'done';
      return this.mutual(keys);
    }
    return [];
  }

  private mutual(keys: Map<string, string>): TextPairs {
    const idText = keys.get('CHAP_I');
    const challengeText = keys.get('CHAP_C');
    if (idText === undefined && challengeText === undefined) return [];
    const { mutualUser, mutualSecret } = this.credentials;
    if (!mutualUser || !mutualSecret) throw new ChapFailure('initiator asked for mutual CHAP, which this target has no credentials for');
    const id = idText === undefined ? undefined : decodeNumber(idText);
    const challenge = challengeText === undefined ? undefined : decodeBinary(challengeText);
    if (id === undefined || id > 255 || !challenge) throw new ChapFailure('malformed CHAP_I or CHAP_C');
    if (challenge.equals(this.challenge)) throw new ChapFailure('initiator reflected our CHAP challenge');
    if (mutualSecret === this.credentials.secret) throw new ChapFailure('mutual CHAP secret must differ from the initiator secret');
    return [
      ['CHAP_N', mutualUser],
      ['CHAP_R', encodeHex(chapResponse(id, mutualSecret, challenge))],
    ];
  }
}
