// HTTP helpers for tests: JSON requests over undici with an explicit timeout on every call, and
// raw socket requests for hostile-input tests (malformed HTTP, slow bodies).
import assert from 'node:assert/strict';
import net from 'node:net';
import { request } from 'undici';

export const HTTP_TIMEOUT_MS_DEFAULT = 5_000;
export const RAW_TIMEOUT_MS_DEFAULT = 5_000;
const RAW_RESPONSE_BYTES_MAX = 16 * 1024 * 1024;

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'OPTIONS';

export interface HttpOptions {
  timeoutMs?: number;
  headers?: Readonly<Record<string, string>>;
  /** Reuse pooled connections. Off by default: a connection is closed after each answer, so a
   * node killed and restarted on the same port never meets a stale pooled socket. */
  keepAlive?: boolean;
}

export interface HttpRequestOptions extends HttpOptions {
  /** Serialised with JSON.stringify and sent with `content-type: application/json`. */
  json?: unknown;
  /** Sent as-is (e.g. malformed JSON); takes precedence over `json`. */
  rawBody?: string | Uint8Array;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string>;
  /** Parsed JSON, or the raw text when the body is not JSON. */
  body: unknown;
  text: string;
  elapsedMs: number;
}

/** A request that got no answer: refused, reset, or timed out. */
export class HttpRequestError extends Error {
  readonly method: string;
  readonly url: string;
  readonly timedOut: boolean;
  /** The system error code of the cause when there is one (ECONNREFUSED, ECONNRESET, ...). */
  readonly causeCode: string | undefined;

  constructor(method: string, url: string, timeoutMs: number, cause: unknown) {
    const timedOut = isTimeout(cause);
    const reason = timedOut ? `timed out after ${timeoutMs} ms` : `failed: ${describe(cause)}`;
    super(`${method} ${url} ${reason}`, { cause });
    this.name = 'HttpRequestError';
    this.method = method;
    this.url = url;
    this.timedOut = timedOut;
    this.causeCode = errorCode(cause);
  }
}

export async function httpRequest(
  method: HttpMethod,
  url: string,
  options: HttpRequestOptions = {},
): Promise<HttpResult> {
  const timeoutMs = options.timeoutMs ?? HTTP_TIMEOUT_MS_DEFAULT;
  assert.ok(timeoutMs > 0, 'timeoutMs must be positive');
  const headers: Record<string, string> = { ...options.headers };
  let body: string | Uint8Array | undefined = options.rawBody;
  if (body === undefined && options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers['content-type'] ??= 'application/json';
  }
  const startedAt = performance.now();
  try {
    const response = await request(url, {
      method,
      headers,
      body,
      reset: options.keepAlive !== true,
      signal: AbortSignal.timeout(timeoutMs),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const text = await response.body.text();
    return {
      status: response.statusCode,
      headers: flattenHeaders(response.headers),
      body: parseBody(text),
      text,
      elapsedMs: performance.now() - startedAt,
    };
  } catch (err) {
    throw new HttpRequestError(method, url, timeoutMs, err);
  }
}

/** GET; `opts.json` sends a JSON body, as the seed's `GET /store/key` expects. */
export function getJson(url: string, opts: HttpRequestOptions = {}): Promise<HttpResult> {
  return httpRequest('GET', url, opts);
}

export function postJson(url: string, body: unknown, opts: HttpOptions = {}): Promise<HttpResult> {
  return httpRequest('POST', url, { ...opts, json: body });
}

export function putJson(url: string, body: unknown, opts: HttpOptions = {}): Promise<HttpResult> {
  return httpRequest('PUT', url, { ...opts, json: body });
}

export function del(url: string, opts: HttpRequestOptions = {}): Promise<HttpResult> {
  return httpRequest('DELETE', url, opts);
}

function parseBody(text: string): unknown {
  if (text.length === 0) return text;
  try {
    return JSON.parse(text);
  } catch {
    // Not JSON: callers get the raw text, which is what a test of an error page wants to see.
    return text;
  }
}

function flattenHeaders(
  raw: Record<string, string | string[] | undefined>,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

export interface RawRequestOptions {
  timeoutMs?: number;
  host?: string;
  /** Pause between chunks when `raw` is an array: a slow client. */
  chunkDelayMs?: number;
  /** Half-close our side (send FIN) after the last chunk. */
  endAfterWrite?: boolean;
  /** Resolve as soon as this holds for what was received, rather than waiting for the server to
   * close; `hasCompleteHttpResponse` suits a keep-alive server. */
  until?: (received: string) => boolean;
}

export interface RawResult {
  /** Everything the server sent, as latin1 so every byte maps to one character. */
  data: string;
  /** How the exchange ended. */
  outcome: 'until' | 'closed' | 'error' | 'timeout';
  /** The socket error code when outcome is 'error' (usually ECONNRESET). */
  errorCode: string | undefined;
  elapsedMs: number;
}

/**
 * Write raw bytes to 127.0.0.1:port and collect the answer until `until` holds, the server closes,
 * the socket errors, or the deadline passes (a timeout resolves, so a test can assert that a server
 * kept a connection open). Rejects only when the connection cannot be made.
 */
export function rawRequest(
  port: number,
  raw: string | Uint8Array | readonly (string | Uint8Array)[],
  opts: RawRequestOptions = {},
): Promise<RawResult> {
  const timeoutMs = opts.timeoutMs ?? RAW_TIMEOUT_MS_DEFAULT;
  const chunks = typeof raw === 'string' || raw instanceof Uint8Array ? [raw] : [...raw];
  const startedAt = performance.now();
  return new Promise<RawResult>((resolve, reject) => {
    const socket = net.connect({ port, host: opts.host ?? '127.0.0.1' });
    let data = '';
    let connected = false;
    let settled = false;
    const finish = (outcome: RawResult['outcome'], errorCode?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      socket.destroy();
      resolve({ data, outcome, errorCode, elapsedMs: performance.now() - startedAt });
    };
    const deadline = setTimeout(() => finish('timeout'), timeoutMs);
    socket.on('connect', () => {
      connected = true;
      writeChunks(socket, chunks, opts).catch((err: unknown) => finish('error', errorCode(err)));
    });
    socket.on('data', (chunk: Buffer) => {
      if (data.length + chunk.length > RAW_RESPONSE_BYTES_MAX) {
        return finish('error', 'RESPONSE_TOO_LARGE');
      }
      data += chunk.toString('latin1');
      if (opts.until?.(data)) finish('until');
    });
    socket.on('end', () => finish('closed'));
    socket.on('close', () => finish('closed'));
    socket.on('error', (err) => {
      if (connected) return finish('error', errorCode(err));
      settled = true;
      clearTimeout(deadline);
      reject(
        new Error(`raw connect to 127.0.0.1:${port} failed: ${describe(err)}`, { cause: err }),
      );
    });
  });
}

async function writeChunks(
  socket: net.Socket,
  chunks: readonly (string | Uint8Array)[],
  opts: RawRequestOptions,
): Promise<void> {
  for (const [index, chunk] of chunks.entries()) {
    if (index > 0 && opts.chunkDelayMs !== undefined) await sleep(opts.chunkDelayMs);
    if (socket.destroyed) return;
    await new Promise<void>((resolve, reject) => {
      socket.write(chunk, (err) => (err ? reject(err) : resolve()));
    });
  }
  if (opts.endAfterWrite === true && !socket.destroyed) socket.end();
}

/** True once `text` holds a whole HTTP/1.1 response framed by Content-Length or chunked coding. */
export function hasCompleteHttpResponse(text: string): boolean {
  const headerEnd = text.indexOf('\r\n\r\n');
  if (headerEnd < 0) return false;
  const head = text.slice(0, headerEnd).toLowerCase();
  const rest = text.slice(headerEnd + 4);
  const length = /\r\ncontent-length:\s*(\d+)/.exec(head);
  if (length?.[1] !== undefined) return Buffer.byteLength(rest, 'latin1') >= Number(length[1]);
  if (/\r\ntransfer-encoding:[^\r]*chunked/.test(head)) return /(^|\r\n)0\r\n\r\n$/.test(rest);
  // No framing: the body runs until the server closes, or there is none (1xx, 204, 304).
  return /^http\/1\.[01] (1\d\d|204|304)/.test(head);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isTimeout(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = errorCode(err);
  return (
    err.name === 'TimeoutError' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'UND_ERR_CONNECT_TIMEOUT'
  );
}

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  if ('code' in err && typeof err.code === 'string') return err.code;
  if ('cause' in err) return errorCode(err.cause);
  return undefined;
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = errorCode(err);
  return code === undefined ? err.message : `${err.message} (${code})`;
}
