import { Type } from '@sinclair/typebox';

/**
 * What one client may make a front end hold: connection counts and the time allowed to
 * negotiate. Shared by the `nbd` and `iscsi` sections.
 */

const Count = (description: string) => Type.Integer({ minimum: 1, maximum: 1_000_000, description, 'x-problem': 'a whole number from 1 to 1000000' });

/** A timeout in milliseconds; 0 turns it off. */
export const Milliseconds = (description: string) =>
  Type.Integer({ minimum: 0, maximum: 3_600_000, description, 'x-problem': 'milliseconds from 0 (never) to 3600000' });

export const ConnectionLimitFields = {
  maxConnections: Type.Optional(Count('connections each listener (portal) accepts; default 1024')),
  maxConnectionsPerClient: Type.Optional(Count('connections one client address may hold across the listeners; default 256')),
};
