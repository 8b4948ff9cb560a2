import { MAX_TEXT_KEY, MAX_TEXT_VALUE } from './constants.js';

/**
 * Text key=value pairs of Login and Text PDUs (RFC 7143 §6.1): UTF-8 `key=value` strings,
 * each terminated by NUL. Order is kept (a list of pairs) because responses follow requests.
 */

export type TextPairs = Array<[key: string, value: string]>;

export class TextFormatError extends Error {
  override readonly name = 'TextFormatError';
}

export function decodeText(data: Buffer): TextPairs {
  const pairs: TextPairs = [];
  let start = 0;
  while (start < data.length) {
    let end = data.indexOf(0, start);
    if (end < 0) end = data.length; // tolerate a missing final NUL
    if (end > start) {
      const s = data.toString('utf8', start, end);
      const eq = s.indexOf('=');
      if (eq <= 0) throw new TextFormatError(`malformed text pair ${JSON.stringify(s.slice(0, 64))}`);
      const key = s.slice(0, eq);
      const value = s.slice(eq + 1);
      if (key.length > MAX_TEXT_KEY) throw new TextFormatError(`key ${JSON.stringify(key.slice(0, 64))} is too long`);
      if (value.length > MAX_TEXT_VALUE) throw new TextFormatError(`value of ${key} is too long`);
      pairs.push([key, value]);
    }
    start = end + 1;
  }
  return pairs;
}

export function encodeText(pairs: TextPairs): Buffer {
  return Buffer.from(pairs.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}

/**
 * Numbers in text values (§6.1): decimal, hex 0x…, or base64 0b…; large binary values
 * (CHAP challenges) use the same prefixes. Returns undefined when malformed.
 */
export function decodeBinary(value: string): Buffer | undefined {
  if (/^0x[0-9a-f]+$/i.test(value)) {
    const hex = value.slice(2);
    return Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
  }
  if (/^0b[A-Za-z0-9+/]+={0,2}$/.test(value)) {
    const b = Buffer.from(value.slice(2), 'base64');
    return b.length > 0 ? b : undefined;
  }
  return undefined;
}

export function encodeHex(b: Buffer): string {
  return `0x${b.toString('hex')}`;
}

/** A numeric value per §6.1 (decimal or 0x hex), undefined if malformed. */
export function decodeNumber(value: string): number | undefined {
  if (/^[0-9]{1,15}$/.test(value)) return Number(value);
  if (/^0x[0-9a-f]{1,12}$/i.test(value)) return parseInt(value.slice(2), 16);
  return undefined;
}
