import { readFileSync } from 'node:fs';

/**
 * TLS pre-shared keys in the file format nbdkit (--tls-psk) and qemu (tls-creds-psk) read,
 * the one GnuTLS's psktool writes: one `username:hexkey` line per client. Keys never appear
 * in an error message: a bad line is named by its number.
 */

export class PskFileError extends Error {
  override readonly name = 'PskFileError';
}

/** psktool makes 32-byte keys; anything shorter than 128 bits is too weak to offer. */
const MIN_KEY_BYTES = 16;

export function parsePskFile(text: string, source: string): Map<string, Buffer> {
  const keys = new Map<string, Buffer>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${source}, line ${i + 1}`;
    const colon = line.lastIndexOf(':');
    if (colon <= 0) throw new PskFileError(`${where}: expected username:hexkey`);
    const user = line.slice(0, colon);
    const hex = line.slice(colon + 1);
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex)) throw new PskFileError(`${where}: the key of ${JSON.stringify(user)} is not an even number of hex digits`);
    if (hex.length / 2 < MIN_KEY_BYTES) throw new PskFileError(`${where}: the key of ${JSON.stringify(user)} is shorter than ${MIN_KEY_BYTES} bytes`);
    if (keys.has(user)) throw new PskFileError(`${where}: ${JSON.stringify(user)} is listed twice`);
    keys.set(user, Buffer.from(hex, 'hex'));
  });
  if (keys.size === 0) throw new PskFileError(`${source}: no keys`);
  return keys;
}

/**
 * A PSK file read at start (a bad one stops start-up) and again at each handshake, so keys
 * can be added or rotated without a restart, as GnuTLS's file credentials allow. A file
 * that later turns unreadable or bad leaves the last good keys in force.
 */
export class PskKeys {
  private keys: Map<string, Buffer>;
  private readonly onProblem: (message: string) => void;

  constructor(
    readonly path: string,
    onProblem: (message: string) => void,
  ) {
    this.keys = parsePskFile(readText(path), path);
    this.onProblem = onProblem;
  }

  /** The key of `user`, or undefined when the file does not list it. */
  lookup(user: string): Buffer | undefined {
    try {
      this.keys = parsePskFile(readText(this.path), this.path);
    } catch (err) {
      this.onProblem(err instanceof Error ? err.message : String(err));
    }
    return this.keys.get(user);
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new PskFileError(`${path}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
}
