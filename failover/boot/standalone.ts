import type { BootOutcome, BootPhase } from './phase.js';

const outcome: BootOutcome = {
  mode: 'standalone',
  gate: () => undefined,
  start: () => undefined,
  stop: async () => undefined,
  roles: () => [],
  primaryOf: () => undefined,
};

/** A member without a `cluster:` section: nobody to arbitrate with, so it serves everything. */
export const standaloneBoot: BootPhase = {
  name: 'standalone',
  boot: async () => outcome,
};
