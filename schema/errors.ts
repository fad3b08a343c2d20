/**
 * The error codes of docs/contract.md section 3.3. Every failure that reaches a client is one of these;
 * anything else is reported as INTERNAL_SERVER_ERROR without details.
 */
export const ERROR_CODES = [
  'BAD_USER_INPUT',
  'NOT_FOUND',
  'CONFLICT',
  'FORBIDDEN',
  'UNAVAILABLE',
  'INTERNAL_SERVER_ERROR',
  // Live subscriptions only: start from a new snapshot / resubscribe with the afterSeq given.
  'SNAPSHOT_REQUIRED',
  'SLOW_CONSUMER',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export class DbaasError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DbaasError';
  }
}

export const badInput = (message: string) => new DbaasError('BAD_USER_INPUT', message);
export const notFound = (message: string) => new DbaasError('NOT_FOUND', message);
export const conflict = (message: string) => new DbaasError('CONFLICT', message);
export const forbidden = (message: string) => new DbaasError('FORBIDDEN', message);
export const unavailable = (message: string) => new DbaasError('UNAVAILABLE', message);
