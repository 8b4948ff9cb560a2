import type { JobErrorReason } from '../image/errors.js';
import { JobError } from '../image/errors.js';
import type { ImageJobs, ImageJobRequest } from '../image/jobs.js';

/**
 * The jobs resource: long work (image import and export) started by one request and
 * followed by polling, with bytes done and total, rate and ETA.
 *
 *   GET    /api/v1/jobs        {"jobs": [job, …]} newest first (running and the last finished)
 *   POST   /api/v1/jobs        {"kind": "image-import"|"image-export", "export", "file", "format"?, "overwrite"?}
 *                              → 202 and the job, Location: /api/v1/jobs/ID
 *   GET    /api/v1/jobs/ID     the job
 *   DELETE /api/v1/jobs/ID     cancel a running job → 200 and the job, now "cancelled"
 */
export interface ApiReply {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Record<string, string>;
}

export const HTTP_STATUS_OF_JOB_ERROR: Record<JobErrorReason, number> = {
  invalid: 400,
  'not-found': 404,
  conflict: 409,
  cancelled: 409,
  unavailable: 503,
  failed: 500,
};

const JOBS_PATH = /^\/api\/v1\/jobs(?:\/([^/]+))?\/?$/;
const REQUEST_FIELDS = new Set(['kind', 'export', 'file', 'format', 'overwrite']);

/** Answers a request under /api/v1/jobs, or returns undefined for any other path. */
export async function routeJobs(jobs: ImageJobs, method: string, path: string, readBody: () => Promise<unknown>): Promise<ApiReply | undefined> {
  const m = JOBS_PATH.exec(path);
  if (!m) return undefined;
  if (m[1] === undefined) {
    if (method === 'GET' || method === 'HEAD') return { status: 200, body: { jobs: jobs.list() } };
    if (method === 'POST') {
      const view = await jobs.start(jobRequest(await readBody()));
      return { status: 202, body: view, headers: { location: `/api/v1/jobs/${view.id}` } };
    }
    return notAllowed('GET, POST');
  }
  let id: string;
  try {
    id = decodeURIComponent(m[1]);
  } catch {
    throw new JobError('invalid', `malformed job id ${JSON.stringify(m[1])}`);
  }
  if (method === 'GET' || method === 'HEAD') return { status: 200, body: jobs.get(id) };
  if (method === 'DELETE') return { status: 200, body: await jobs.cancel(id) };
  return notAllowed('GET, DELETE');
}

function notAllowed(allow: string): ApiReply {
  return { status: 405, body: { error: `use ${allow}` }, headers: { allow } };
}

/** The body's shape; the values themselves are checked by ImageJobs against the member. */
function jobRequest(body: unknown): ImageJobRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new JobError('invalid', 'the body must be a JSON object');
  const unknown = Object.keys(body).filter((k) => !REQUEST_FIELDS.has(k));
  if (unknown.length > 0) throw new JobError('invalid', `unknown field${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`);
  return body as ImageJobRequest;
}
