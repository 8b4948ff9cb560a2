import { stat } from 'node:fs/promises';
import { checkDeviceRules } from './device-rules.js';
import { Problems } from './errors.js';
import type { ValidatedConfig } from './validate.js';

/**
 * Backing files that are missing and not to be created: configuration errors naming
 * `backends[N].path`, all at once, before anything is opened. A file backend never
 * creates its file unless `create: true`, so a wrong path is never served as a new empty
 * disk. The size of an existing file that the configuration leaves out is then checked as
 * a stated one would be: replicas of a mirror (or paths) of different sizes are refused here,
 * by `check-config` too, not only when the member opens them.
 */
export async function checkBackingFiles({ graph }: Pick<ValidatedConfig, 'graph'>): Promise<void> {
  const problems = new Problems();
  const fileSizes = new Map<string, number>();
  for (const { spec, field } of graph.values()) {
    if (spec.type !== 'file' || spec.create === true) continue;
    try {
      const info = await stat(spec.path);
      if (spec.size === undefined && info.isFile()) fileSizes.set(spec.name, info.size);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      problems.add(`${field}.path`, code === 'ENOENT' ? `${spec.path} does not exist (set create: true and a size to create it)` : `cannot use ${spec.path}: ${code ?? String(err)}`);
    }
  }
  // The rules passed on the stated sizes; only what the files' own sizes add can fail now.
  if (fileSizes.size > 0) checkDeviceRules(graph, problems, fileSizes);
  problems.throwIfAny();
}
