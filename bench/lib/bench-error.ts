/**
 * The errors the benchmark harness throws on purpose, each with a stable code,
 * so that run.ts can tell a broken setup from a failing measurement.
 */
export type BenchErrorCode =
  | 'BAD_OPTION'
  | 'CHILD_EXITED'
  | 'NOT_READY'
  | 'STOP_FAILED'
  | 'RSS_UNAVAILABLE'
  | 'LOAD_FAILED'
  | 'CEILING_INVALID'
  | 'TOO_MANY_CHILDREN';

export class BenchError extends Error {
  readonly code: BenchErrorCode;

  constructor(code: BenchErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BenchError';
    this.code = code;
  }
}
