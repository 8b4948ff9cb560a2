import type { ClusterStatus } from '../../failover/cluster/runtime.js';
import { PeerRequestError } from '../../failover/peer/messages.js';
import type { SubmitResult } from '../../failover/sync/config-sync.js';
import { MAX_CONFIG_BODY } from './config.js';
import type { ApiReply } from './jobs.js';

/**
 * The cluster and configuration resources:
 *
 *   GET  /api/v1/cluster                                       this member's view: members, networks, roles, alarms
 *   POST /api/v1/cluster/members/ID/actions/clearQuarantine    an operator clears a member's quarantine (on any member)
 *   PUT  /api/v1/config                                        a new configuration for the whole cluster (the body is the
 *                                                              document): made a generation by the cluster set's Primary
 *                                                              (forwarded there from any member), then pulled by every member
 *
 * GET /api/v1/config (the generation this member runs) and a lone member's live changes are
 * config.ts's; on a cluster member its apply and rollback go through the cluster too.
 */

export interface ClusterApi {
  status(): ClusterStatus | undefined;
  submitConfig(doc: unknown, source: string): Promise<SubmitResult>;
  clearQuarantine(member: string, by: string): Promise<boolean>;
}

const MEMBER_ACTION = /^\/api\/v1\/cluster\/members\/([^/]+)\/actions\/([^/]+)$/;

/** How a peer's refusal maps to HTTP. */
const STATUS_OF_PEER_CODE: Record<string, number> = {
  EINVAL: 400,
  ENOENT: 404,
  ENOTSUP: 409,
  ENOPRIMARY: 503,
  ENOTPRIMARY: 503,
  ETIMEDOUT: 504,
  ENOPATH: 503,
  ECONNRESET: 503,
};

export function peerErrorReply(err: unknown): ApiReply | undefined {
  if (!(err instanceof PeerRequestError)) return undefined;
  return { status: STATUS_OF_PEER_CODE[err.code] ?? 502, body: { error: err.message, code: err.code } };
}

export async function routeCluster(
  cluster: ClusterApi | undefined,
  method: string,
  path: string,
  readBody: (limit: number) => Promise<unknown>,
): Promise<ApiReply | undefined> {
  try {
    return await route(cluster, method, path, readBody);
  } catch (err) {
    const reply = peerErrorReply(err);
    if (reply) return reply;
    throw err;
  }
}

async function route(cluster: ClusterApi | undefined, method: string, path: string, readBody: (limit: number) => Promise<unknown>): Promise<ApiReply | undefined> {
  if (path === '/api/v1/config' && method === 'PUT') {
    if (!cluster?.status()) return { status: 409, body: { error: 'this member has no cluster with management networks: apply a configuration with POST /api/v1/config/apply' } };
    return { status: 200, body: await cluster.submitConfig(await readBody(MAX_CONFIG_BODY), 'api') };
  }
  if (path === '/api/v1/cluster') {
    if (method !== 'GET' && method !== 'HEAD') return { status: 405, body: { error: 'use GET' }, headers: { allow: 'GET, HEAD' } };
    const status = cluster?.status();
    if (!status) return { status: 404, body: { error: 'this member has no cluster with management networks' } };
    return { status: 200, body: status };
  }
  const action = MEMBER_ACTION.exec(path);
  if (!action) return undefined;
  if (method !== 'POST') return { status: 405, body: { error: 'use POST' }, headers: { allow: 'POST' } };
  if (!cluster?.status()) return { status: 404, body: { error: 'this member has no cluster with management networks' } };
  const member = decodeURIComponent(action[1]!);
  if (action[2] !== 'clearQuarantine') return { status: 400, body: { error: `unknown action ${JSON.stringify(action[2])} (available: clearQuarantine)` } };
  await readBody(64 * 1024);
  const cleared = await cluster.clearQuarantine(member, 'api');
  return { status: 200, body: { member, action: 'clearQuarantine', ok: true, cleared } };
}
