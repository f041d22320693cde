/**
 * Every error the client throws, in one file, each with a stable `code`
 * (undici's habit): callers decide on `error.code`, never on a message.
 * A node's own error answer keeps the node's code (`KEY_TOO_LARGE`,
 * `OVERLOADED`, ...) and status; the client's own codes start `CLIENT_`.
 */

/** What happened on one attempt of a call, kept on the final error. */
export interface AttemptRecord {
  readonly node: string;
  readonly error: string;
  readonly code: string;
  readonly status?: number;
}

export class PeerkvClientError extends Error {
  readonly code: string;
  /** Every attempt the call made before this error, oldest first. */
  readonly attempts: readonly AttemptRecord[];

  constructor(
    code: string,
    message: string,
    options: { cause?: unknown; attempts?: readonly AttemptRecord[] } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'PeerkvClientError';
    this.code = code;
    this.attempts = options.attempts ?? [];
  }
}

/** A node answered with an error: `code` is the node's stable code, `status` its HTTP status. */
export class PeerkvResponseError extends PeerkvClientError {
  readonly status: number;
  readonly node: string;

  constructor(
    node: string,
    status: number,
    code: string,
    message: string,
    options: { attempts?: readonly AttemptRecord[] } = {},
  ) {
    super(code, message, options);
    this.name = 'PeerkvResponseError';
    this.status = status;
    this.node = node;
  }
}

/** A node's error answer (`{"error","code"}`, or just a status) as a PeerkvResponseError. */
export function responseError(
  node: string,
  answer: { readonly status: number; readonly json: unknown },
  attempts: readonly AttemptRecord[],
): PeerkvResponseError {
  const body = answer.json as { error?: unknown; code?: unknown } | null;
  const code = typeof body?.code === 'string' ? body.code : `HTTP_${answer.status}`;
  const message = typeof body?.error === 'string' ? body.error : `answered ${answer.status}`;
  return new PeerkvResponseError(node, answer.status, code, message, { attempts });
}

/** No node could be reached (refused, reset, TLS failure, every one overloaded). */
export class PeerkvUnavailableError extends PeerkvClientError {
  constructor(message: string, options: { cause?: unknown; attempts: readonly AttemptRecord[] }) {
    super('CLIENT_UNAVAILABLE', message, options);
    this.name = 'PeerkvUnavailableError';
  }
}

/** The call's overall deadline (`timeoutMs`) passed before any node answered. */
export class PeerkvTimeoutError extends PeerkvClientError {
  readonly timeoutMs: number;

  constructor(timeoutMs: number, options: { attempts: readonly AttemptRecord[] }) {
    super('CLIENT_TIMEOUT', `no answer within ${timeoutMs} ms`, options);
    this.name = 'PeerkvTimeoutError';
    this.timeoutMs = timeoutMs;
  }
}

/** The caller's AbortSignal fired. `cause` is the signal's reason. */
export class PeerkvAbortError extends PeerkvClientError {
  constructor(reason: unknown, options: { attempts?: readonly AttemptRecord[] } = {}) {
    super('CLIENT_ABORTED', 'the call was aborted', { cause: reason, ...options });
    this.name = 'PeerkvAbortError';
  }
}

/** A node answered something that is not a peerkv answer (not JSON, wrong shape, too big). */
export class PeerkvBadAnswerError extends PeerkvClientError {
  constructor(
    message: string,
    options: { cause?: unknown; attempts?: readonly AttemptRecord[] } = {},
  ) {
    super('CLIENT_BAD_ANSWER', message, options);
    this.name = 'PeerkvBadAnswerError';
  }
}

/** The caller passed something the client refuses before any request (bad key, bad option). */
export class PeerkvArgumentError extends PeerkvClientError {
  constructor(message: string) {
    super('CLIENT_BAD_ARGUMENT', message);
    this.name = 'PeerkvArgumentError';
  }
}
