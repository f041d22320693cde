/**
 * The one place that writes responses and maps errors to them. Every error is
 * `{"error": "<message>", "code": "<CODE>"}`; unknown errors are logged in
 * full and answered 500 without details.
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { PeerkvError } from '../errors.ts';
import { limits } from '../limits.ts';

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
  // A full or failed disk is logged once by the store, not once per refused write.
  else if (known.code === 'STORAGE_FULL' || known.code === 'STORAGE_FAILED') {
    log.debug({ code: known.code }, 'write refused');
  } else if (known.status >= 500) log.warn({ code: known.code, err: known }, 'request refused');
  const failure = known ?? new PeerkvError('INTERNAL', 'internal error');
  const body = JSON.stringify({ error: failure.message, code: failure.code, ...failure.details });
  const closing = failure.headers.Connection === 'close';
  if (closing) lingerBeforeClose(res);
  sendJsonText(res, failure.status, body, failure.headers);
  if (closing) res.once('finish', () => res.socket?.destroySoon());
}

/**
 * An answer that leaves a request body unread closes the connection. Closing at once would reset
 * it while the client is still sending (the unread bytes make the kernel send RST), and a reset
 * client loses the answer it has not read yet. So the close is gentle: FIN after the answer, the
 * rest of the body read and dropped, and the socket destroyed only after lingerCloseMs (or when
 * the client closes). node:http calls destroySoon() itself after a `Connection: close` answer;
 * this socket's destroySoon is replaced to linger first.
 */
function lingerBeforeClose(res: ServerResponse): void {
  const socket = res.socket;
  if (!socket) return;
  let lingering = false;
  socket.destroySoon = () => {
    if (lingering) return;
    lingering = true;
    socket.end();
    socket.resume();
    const timer = setTimeout(() => socket.destroy(), limits.lingerCloseMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  };
}

/** A static file of the dashboard. */
export function sendAsset(
  res: ServerResponse,
  contentType: string,
  body: Buffer,
  headers: Readonly<Record<string, string>>,
): void {
  res.writeHead(200, { ...headers, 'Content-Type': contentType, 'Content-Length': body.length });
  res.end(body);
}

export function sendRedirect(res: ServerResponse, location: string): void {
  const body = JSON.stringify({ location });
  res.writeHead(302, {
    Location: location,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}
