/**
 * Every error a client can be shown, with a stable code and an HTTP status.
 * `src/http/respond.ts` is the one place that turns them into responses.
 */
export type ErrorCode =
  | 'BAD_JSON'
  | 'BAD_REQUEST'
  | 'BAD_KEY'
  | 'KEY_TOO_LARGE'
  | 'BAD_VALUE'
  | 'VALUE_TOO_LARGE'
  | 'BODY_TOO_LARGE'
  | 'BAD_BATCH'
  | 'BATCH_TOO_LARGE'
  | 'KEY_NOT_FOUND'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'VERSION_MISMATCH'
  | 'BAD_CONDITION'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'REQUEST_TIMEOUT'
  | 'OVERLOADED'
  | 'TOO_MANY_WATCHERS'
  | 'SHUTTING_DOWN'
  | 'NOT_READY'
  | 'STORAGE_FULL'
  | 'STORAGE_FAILED'
  | 'NODE_ID_CONFLICT'
  | 'CANNOT_REMOVE_SELF'
  | 'MEMBER_UNREACHABLE'
  | 'MEMBER_CLOSED'
  | 'REMOVED_MEMBER'
  | 'BACKUP_RUNNING'
  | 'INTERNAL';

const statusByCode: Record<ErrorCode, number> = {
  BAD_JSON: 400,
  BAD_REQUEST: 400,
  BAD_KEY: 400,
  KEY_TOO_LARGE: 400,
  BAD_VALUE: 400,
  VALUE_TOO_LARGE: 413,
  BODY_TOO_LARGE: 413,
  BAD_BATCH: 400,
  BATCH_TOO_LARGE: 413,
  KEY_NOT_FOUND: 404,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  VERSION_MISMATCH: 412,
  BAD_CONDITION: 400,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  OVERLOADED: 503,
  TOO_MANY_WATCHERS: 503,
  SHUTTING_DOWN: 503,
  NOT_READY: 503,
  STORAGE_FULL: 507,
  STORAGE_FAILED: 500,
  NODE_ID_CONFLICT: 503,
  CANNOT_REMOVE_SELF: 409,
  MEMBER_UNREACHABLE: 502,
  MEMBER_CLOSED: 409,
  REMOVED_MEMBER: 409,
  BACKUP_RUNNING: 503,
  INTERNAL: 500,
};

/** An error whose message is safe to show to the client. */
export class PeerkvError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra response headers, e.g. `Allow` or `Retry-After`. */
  readonly headers: Readonly<Record<string, string>>;
  /** Extra fields of the JSON error body, e.g. the failing op of a batch. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    options: {
      headers?: Record<string, string>;
      details?: Record<string, unknown>;
      cause?: unknown;
    } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'PeerkvError';
    this.code = code;
    this.status = statusByCode[code];
    this.headers = options.headers ?? {};
    this.details = options.details ?? {};
  }
}

export const keyNotFound = (): PeerkvError => new PeerkvError('KEY_NOT_FOUND', 'Key not found');

/** SQLite's "database or disk is full": the write did not happen and may be retried later. */
export function isStorageFull(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'SQLITE_FULL';
}

export const storageFull = (cause: unknown): PeerkvError =>
  new PeerkvError(
    'STORAGE_FULL',
    'the disk is full: nothing was written; retry when space returns',
    {
      cause,
      headers: { 'Retry-After': '5' },
    },
  );

/** A user mistake in the configuration: one line on stderr, exit code 2. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
