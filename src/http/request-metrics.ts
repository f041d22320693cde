/**
 * What the HTTP layer tells the metrics: every answered request (route
 * pattern, method, status, seconds) and every refusal by reason, derived
 * from the error's stable code in one place.
 */
import type { ServerResponse } from 'node:http';
import { type ErrorCode, PeerkvError } from '../errors.ts';
import type { HttpMetrics, RejectReason } from '../metrics/metrics.ts';

const REASON_BY_CODE: Partial<Record<ErrorCode, RejectReason>> = {
  UNAUTHENTICATED: 'auth',
  FORBIDDEN: 'auth',
  KEY_TOO_LARGE: 'limits',
  VALUE_TOO_LARGE: 'limits',
  BODY_TOO_LARGE: 'limits',
  BATCH_TOO_LARGE: 'limits',
  OVERLOADED: 'overload',
  REQUEST_TIMEOUT: 'timeout',
  SHUTTING_DOWN: 'unavailable',
  NOT_READY: 'unavailable',
  BAD_JSON: 'invalid',
  BAD_REQUEST: 'invalid',
  BAD_KEY: 'invalid',
  BAD_VALUE: 'invalid',
  BAD_BATCH: 'invalid',
  METHOD_NOT_ALLOWED: 'invalid',
};

/** Counts `error` as a refusal when its code is one (a missing key is not). */
export function countRejection(metrics: HttpMetrics, error: unknown): void {
  const reason = error instanceof PeerkvError ? REASON_BY_CODE[error.code] : undefined;
  if (reason !== undefined) metrics.rejected(reason);
}

/** Observes the request when its answer has been handed to the socket. */
export function timeRequest(
  metrics: HttpMetrics,
  res: ServerResponse,
  route: string,
  method: string | undefined,
): void {
  const startedMonoMs = performance.now();
  res.once('finish', () => {
    const seconds = (performance.now() - startedMonoMs) / 1000;
    metrics.observeRequest(route, method ?? 'UNKNOWN', res.statusCode, seconds);
  });
}
