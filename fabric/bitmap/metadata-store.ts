import { readFile, unlink } from 'node:fs/promises';
import { writeFileDurably } from './durable-file.js';

/**
 * Where a mirror keeps what must outlive the process that runs it: its replica states, the
 * dirty bitmap of each replica that is away, its activity log. Items are named by path-like
 * names. The default, `FILES`, is the member's own data directory. A store elsewhere (the
 * cluster arbiter's, for a shared-nothing set whose next Primary is another process on
 * another host) implements the same three calls; `write` replaces an item durably before it
 * resolves, and may refuse (a deposed writer), which the mirror treats as a failed metadata
 * write.
 */
export interface MetadataStore {
  /** For messages: where the items live. */
  readonly where: string;
  /** The item, or undefined when there is none. */
  read(name: string): Promise<Buffer | undefined>;
  write(name: string, data: Buffer | string): Promise<void>;
  remove(name: string): Promise<void>;
}

/** Items are files at their (absolute) names. DirtyBitmap keeps its own file handle for partial writes. */
export const FILES: MetadataStore = {
  where: 'the data directory',
  async read(name) {
    try {
      return await readFile(name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  },
  write: (name, data) => writeFileDurably(name, data),
  async remove(name) {
    await unlink(name).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  },
};
