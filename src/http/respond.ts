/**
 * The one place that writes responses and maps errors to them. Every error is
 * `{"error": "<message>", "code": "<CODE>"}`; unknown errors are logged in
 * full and answered 500 without details.
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { PeerkvError } from '../errors.ts';

export function sendJsonText(
  res: ServerResponse,
  status: number,
  json: string,
  headers: Readonly<Record<string, string>> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(json),
  });
  res.end(json);
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  sendJsonText(res, status, JSON.stringify(body));
}

export function sendError(res: ServerResponse, error: unknown, log: Logger): void {
  const known = error instanceof PeerkvError ? error : undefined;
  if (!known) log.error({ err: error }, 'request failed');
  // A shed request (503) is expected under load: one line per request at debug, no stack.
  else if (known.status === 503) log.debug({ code: known.code }, 'request shed');
  else if (known.status >= 500) log.warn({ code: known.code, err: known }, 'request refused');
  const failure = known ?? new PeerkvError('INTERNAL', 'internal error');
  const body = JSON.stringify({ error: failure.message, code: failure.code });
  sendJsonText(res, failure.status, body, failure.headers);
  if (failure.headers.Connection === 'close') res.once('finish', () => res.socket?.destroySoon());
}
