import { stat } from 'node:fs/promises';
import { Problems } from './errors.js';
import type { ValidatedConfig } from './validate.js';

/**
 * Backing files that are missing and not to be created: configuration errors naming
 * `backends[N].path`, all at once, before anything is opened. A file backend never
 * creates its file unless `create: true`, so a wrong path is never served as a new empty
 * disk.
 */
export async function checkBackingFiles({ graph }: Pick<ValidatedConfig, 'graph'>): Promise<void> {
  const problems = new Problems();
  for (const { spec, field } of graph.values()) {
    if (spec.type !== 'file' || spec.create === true) continue;
    try {
      await stat(spec.path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      problems.add(`${field}.path`, code === 'ENOENT' ? `${spec.path} does not exist (set create: true and a size to create it)` : `cannot use ${spec.path}: ${code ?? String(err)}`);
    }
  }
  problems.throwIfAny();
}
