import { CONFIG_SCHEMA_VERSION, MemberConfigSchema } from './member-config.js';

/**
 * The configuration schema as a JSON Schema document (draft-07), shipped as
 * config.schema.json for editors: `# yaml-language-server: $schema=…/config.schema.json`
 * in a YAML file, or `"$schema"` in a JSON one. `npm run config-schema` writes it; a test
 * checks the shipped file is current.
 */
export function configJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    'x-schemaVersion': CONFIG_SCHEMA_VERSION,
    ...(JSON.parse(JSON.stringify(MemberConfigSchema)) as Record<string, unknown>),
  };
}
