import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { ConfigError } from './errors.js';
import { validateMemberConfig, type ValidatedConfig } from './validate.js';

export type ConfigFormat = 'json' | 'yaml';

/** By extension; otherwise a document opening with `{` is JSON and anything else YAML. */
export function detectFormat(path: string, text: string): ConfigFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.json') return 'json';
  if (ext === '.yaml' || ext === '.yml') return 'yaml';
  return text.trimStart().startsWith('{') ? 'json' : 'yaml';
}

/** Parse without interpreting; syntax errors name the file and the line. */
export function parseConfigText(text: string, path: string): unknown {
  const format = detectFormat(path, text);
  if (format === 'json') {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new ConfigError(path, `not valid JSON: ${(err as Error).message}`);
    }
  }
  // Duplicate keys are errors by default in `yaml`: a repeated key must not silently win.
  const doc = parseDocument(text, { prettyErrors: true });
  const problem = doc.errors[0];
  if (problem) throw new ConfigError(path, `not valid YAML: ${problem.message}`);
  return doc.toJS({ maxAliasCount: 100 });
}

/**
 * Read, parse and validate a config file. Relative backing-file paths are resolved against
 * the file's directory. Nothing is started or stored.
 */
export async function loadConfigFile(path: string): Promise<ValidatedConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return validateMemberConfig(parseConfigText(text, path), { baseDir: dirname(resolve(path)) });
}
