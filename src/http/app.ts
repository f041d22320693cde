/**
 * The HTTP front end: a polka app over the routes, one error path for all of
 * them, 404 for unknown paths and 405 (with `Allow`) for a known path asked
 * with the wrong method. The node:http server carries the timeouts and the
 * connection bound that keep slow clients from starving the node.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import polka from 'polka';
import { PeerkvError } from '../errors.ts';
import { limits } from '../limits.ts';
import type { HttpMetrics } from '../metrics/metrics.ts';
import type { Authorizer } from '../security/authorizer.ts';
import type { ServerTlsOptions } from '../security/tls.ts';
import { guardConnections } from './connection-guard.ts';
import { countRejection, timeRequest } from './request-metrics.ts';
import { sendError, sendJsonText } from './respond.ts';
import type { Request, Route, RouteExtras } from './route.ts';

export interface ServerOptions {
  readonly connectionsMax: number;
  /** Connections one client address may hold (default: a quarter of connectionsMax). */
  readonly connectionsPerClientMax?: number;
  /** IP addresses of the configured peers: they may use the slots kept for peers. */
  readonly peerAddresses?: ReadonlySet<string>;
  /** Time to receive a whole request; also the inactivity and response-write deadlines. */
  readonly requestTimeoutMs: number;
  /** Checks each route's permission before its handler runs. */
  readonly authorizer: Authorizer;
  readonly metrics: HttpMetrics;
  /** Serve HTTPS with these (src/security/tls.ts); null: plain HTTP. */
  readonly tls: ServerTlsOptions | null;
}

/** The node's server: node:http, or node:https when TLS is on. */
export type Server = ReturnType<typeof createServer> | ReturnType<typeof createHttpsServer>;

/** Answers a request with an error, counting it when it is a refusal. */
type Fail = (res: Response, error: unknown) => void;

type Response = Parameters<Route['handler']>[1];
/** A request before the permission check gave it its `access`. */
type Incoming = IncomingMessage & Partial<RouteExtras>;

export interface HttpServer {
  readonly server: Server;
  /** Swaps in reloaded certificates (SIGHUP); connections already open keep theirs. */
  setTls(tls: ServerTlsOptions): void;
  /** Closes connections that have not sent a request yet (for shutdown). */
  closeWaitingConnections(): void;
}

export function createHttpServer(routes: Route[], log: Logger, options: ServerOptions): HttpServer {
  const fail: Fail = (res, error) => {
    countRejection(options.metrics, error);
    sendError(res, error, log);
  };
  const app = polka({
    onNoMatch: (req: Incoming, res: Response) => {
      timeRequest(options.metrics, res, 'unmatched', req.method);
      fail(res, noMatch(routes, req));
    },
  });
  for (const route of routes) {
    const handler = guarded(route, options, fail);
    app.add(route.method as never, route.pattern, handler);
    // HEAD answers like GET; node:http leaves the body out.
    if (route.method === 'GET') app.add('HEAD' as never, route.pattern, handler);
  }
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (req.httpVersionMinor >= 1 && req.headers.host === undefined) {
      fail(res, new PeerkvError('BAD_REQUEST', 'HTTP/1.1 request without a Host header'));
      return;
    }
    app.handler(req as never, res as never);
  };
  // Timeouts are checked every second (Node's default is every 30 s).
  // A missing Host header is answered by our own JSON 404/400 path, not Node's empty 400.
  const httpOptions = { connectionsCheckingInterval: 1_000, requireHostHeader: false };
  const server: Server =
    options.tls === null
      ? createServer(httpOptions, onRequest)
      : createHttpsServer(
          { ...httpOptions, ...options.tls, handshakeTimeout: limits.headersTimeoutMs },
          onRequest,
        );
  if (options.tls !== null) {
    server.on('tlsClientError', (error: NodeJS.ErrnoException) => {
      options.metrics.rejected('invalid');
      log.debug({ code: error.code }, 'tls handshake failed');
    });
  }
  server.on('checkExpectation', (_req, res: Response) => {
    options.metrics.rejected('invalid');
    const error = new PeerkvError('BAD_REQUEST', 'only "Expect: 100-continue" is supported');
    sendJsonText(res, 417, JSON.stringify({ error: error.message, code: 'EXPECTATION_FAILED' }));
  });
  server.on('connect', (_req, socket: Socket) => {
    options.metrics.rejected('invalid');
    socket.on('error', () => socket.destroy());
    socket.end(
      rawJsonResponse(
        405,
        'Method Not Allowed',
        'METHOD_NOT_ALLOWED',
        'method CONNECT not allowed',
      ),
    );
  });
  server.requestTimeout = options.requestTimeoutMs;
  server.headersTimeout = Math.min(limits.headersTimeoutMs, options.requestTimeoutMs);
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  // A socket with no traffic either way for this long is closed (a client that stopped reading).
  // Never before the keep-alive timeout: a client reusing an idle socket must not race a close.
  server.setTimeout(Math.max(options.requestTimeoutMs, limits.keepAliveTimeoutMs + 1_000));
  // And a whole exchange ends within twice the request timeout: receiving it (bounded by the
  // request timeout) and answering it, so a client that reads the answer too slowly is cut.
  server.on('request', (req: Request, res: Response) => {
    const socket = req.socket;
    // A server-sent event stream (GET /watch) is long-lived by design and keeps its own bounds
    // (heartbeats, the watcher limit), and so is GET /backup (one at a time, silent while the
    // copy is taken, then its own inactivity bound): neither deadline here applies to them.
    if (isEventStream(req, res) || isBackup(req)) {
      socket.setTimeout(0);
      return;
    }
    // The socket itself: destroying a response whose socket is backed up leaves the socket open.
    const exchange = setTimeout(() => socket.destroy(), 2 * options.requestTimeoutMs);
    exchange.unref();
    res.once('close', () => clearTimeout(exchange));
    res.once('finish', () => {
      clearTimeout(exchange);
      // 'finish' means handed to the socket, not read: an answer still buffered must drain in
      // time (a client that stopped reading would otherwise hold it, and its memory, for ever).
      if (socket.writableLength === 0) return;
      const stalled = setTimeout(() => socket.destroy(), options.requestTimeoutMs);
      stalled.unref();
      const clear = (): void => clearTimeout(stalled);
      socket.once('drain', clear).once('close', clear);
    });
  });
  // With TLS a request's socket is the TLS socket, so connections are counted once secure.
  const guard = guardConnections(server, {
    connectionEvent: options.tls === null ? 'connection' : 'secureConnection',
    connectionsMax: options.connectionsMax,
    perClientMax:
      options.connectionsPerClientMax ?? Math.max(1, Math.floor(options.connectionsMax / 4)),
    peerSlots: peerSlotsFor(options.connectionsMax),
    peerAddresses: options.peerAddresses ?? new Set(),
    onRefused: () => options.metrics.rejected('connections'),
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    log.debug({ code: error.code }, 'client error');
    const timedOut = error.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    options.metrics.rejected(timedOut ? 'timeout' : 'invalid');
    if (socket.writable && !socket.destroyed) {
      socket.end(
        timedOut
          ? rawJsonResponse(408, 'Request Timeout', 'REQUEST_TIMEOUT', 'request timed out')
          : rawJsonResponse(400, 'Bad Request', 'BAD_REQUEST', 'malformed HTTP request'),
      );
    } else socket.destroy();
  });
  return {
    server,
    setTls: (tls) => {
      if ('setSecureContext' in server) server.setSecureContext(tls);
    },
    closeWaitingConnections: () => guard.closeWaiting(),
  };
}

function isEventStream(req: Request, res: Response): boolean {
  const type = String(res.getHeader('content-type') ?? '');
  return type.startsWith('text/event-stream') || /^\/watch(\?|$)/.test(req.url ?? '');
}

function isBackup(req: Request): boolean {
  return /^\/backup(\?|$)/.test(req.url ?? '');
}

/** Slots kept for peers: a quarter of the bound, at most peerConnectionSlotsMax. */
function peerSlotsFor(connectionsMax: number): number {
  return Math.min(limits.peerConnectionSlotsMax, Math.floor(connectionsMax / 4));
}

/** A whole HTTP/1.1 error response, for sockets that never reached a handler. */
function rawJsonResponse(status: number, reason: string, code: string, message: string): string {
  const body = JSON.stringify({ error: message, code });
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/**
 * Parses a query string strictly: polka's parser decodes invalid UTF-8
 * lossily (so `%FF` and `%C0%AF` would both read the key U+FFFD).
 */
export function parseQueryStrict(search: string): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = Object.create(null);
  for (const part of search.replace(/^\?/, '').split('&')) {
    if (part === '') continue;
    const equals = part.indexOf('=');
    const [rawName, rawValue] =
      equals < 0 ? [part, ''] : [part.slice(0, equals), part.slice(equals + 1)];
    let name: string;
    let value: string;
    try {
      name = decodeURIComponent(rawName.replaceAll('+', ' '));
      value = decodeURIComponent(rawValue.replaceAll('+', ' '));
    } catch (cause) {
      throw new PeerkvError('BAD_REQUEST', 'query string is not valid percent-encoded UTF-8', {
        cause,
      });
    }
    const previous = query[name];
    query[name] =
      previous === undefined
        ? value
        : [...(Array.isArray(previous) ? previous : [previous]), value];
  }
  return query;
}

function guarded(route: Route, options: ServerOptions, fail: Fail) {
  return (incoming: Incoming, res: Response): void => {
    timeRequest(options.metrics, res, route.pattern, incoming.method);
    try {
      incoming.access = authorize(route, options.authorizer, incoming);
      const req = incoming as Request;
      const search = (incoming as Incoming & { search?: string | null }).search;
      req.query = search ? parseQueryStrict(search) : {};
      const result = route.handler(req, res);
      if (result) result.catch((error: unknown) => fail(res, error));
    } catch (error) {
      fail(res, error);
    }
  };
}

/**
 * The route's permission, checked before anything of the request is read.
 * A refused request that carries a body gets its connection closed rather
 * than the body read (an unauthenticated client does not get to send 64 MiB).
 */
function authorize(route: Route, authorizer: Authorizer, req: Incoming) {
  try {
    return authorizer.authorize(route.permission, req);
  } catch (error) {
    const hasBody =
      req.headers['transfer-encoding'] !== undefined ||
      (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
    if (!(error instanceof PeerkvError) || !hasBody) throw error;
    throw new PeerkvError(error.code, error.message, {
      headers: { ...error.headers, Connection: 'close' },
      cause: error.cause,
    });
  }
}

function noMatch(routes: Route[], req: Incoming): PeerkvError {
  const path = req.path ?? '/';
  const allowed = routes
    .filter((route) => matches(route.pattern, path))
    .map((route) => route.method);
  if (allowed.length === 0)
    return new PeerkvError('NOT_FOUND', `no route for ${path.slice(0, 200)}`);
  return new PeerkvError('METHOD_NOT_ALLOWED', `method ${req.method ?? ''} not allowed`, {
    headers: { Allow: [...new Set(allowed)].join(', ') },
  });
}

function matches(pattern: string, path: string): boolean {
  if (pattern.endsWith('/*'))
    return path.startsWith(pattern.slice(0, -1)) && path.length > pattern.length - 1;
  return pattern === path;
}
