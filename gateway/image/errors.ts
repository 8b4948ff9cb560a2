/**
 * Why an image job could not be started or did not finish, in terms the API turns into an
 * HTTP status: the request was wrong (400), names nothing (404), conflicts with the state
 * of the member (409), or the member lacks a tool (503).
 */
export type JobErrorReason = 'invalid' | 'not-found' | 'conflict' | 'unavailable' | 'failed' | 'cancelled';

export class JobError extends Error {
  override readonly name = 'JobError';
  constructor(
    readonly reason: JobErrorReason,
    message: string,
  ) {
    super(message);
  }
}
