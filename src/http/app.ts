/**
 * The HTTP front end: a polka app over the routes, one error path for all of
 * them, 404 for unknown paths and 405 (with `Allow`) for a known path asked
 * with the wrong method. The node:http server carries the timeouts and the
 * connection bound that keep slow clients from starving the node.
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import polka from 'polka';
import { PeerkvError } from '../errors.ts';
import { limits } from '../limits.ts';
import type { Route, RouteExtras } from './kv-routes.ts';
import { sendError } from './respond.ts';

export interface ServerOptions {
  readonly connectionsMax: number;
  readonly requestTimeoutMs: number;
}

type Request = Parameters<Route['handler']>[0];
type Response = Parameters<Route['handler']>[1];

export function createHttpServer(routes: Route[], log: Logger, options: ServerOptions): Server {
  const app = polka({
    onNoMatch: (req: Request, res: Response) => sendError(res, noMatch(routes, req), log),
  });
  for (const route of routes) {
    app.add(route.method as never, route.pattern, guarded(route, log));
    // HEAD answers like GET; node:http leaves the body out.
    if (route.method === 'GET') app.add('HEAD' as never, route.pattern, guarded(route, log));
  }
  // Timeouts are checked every second (Node's default is every 30 s).
  const server = createServer({ connectionsCheckingInterval: 1_000 }, (req, res) =>
    app.handler(req as never, res as never),
  );
  server.requestTimeout = options.requestTimeoutMs;
  server.headersTimeout = Math.min(limits.headersTimeoutMs, options.requestTimeoutMs);
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = options.connectionsMax;
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    log.debug({ code: error.code }, 'client error');
    if (socket.writable && !socket.destroyed) {
      const status = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      const body = JSON.stringify({
        error: 'malformed or timed out request',
        code: status === 408 ? 'REQUEST_TIMEOUT' : 'BAD_REQUEST',
      });
      socket.end(
        `HTTP/1.1 ${status} ${status === 408 ? 'Request Timeout' : 'Bad Request'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    } else socket.destroy();
  });
  return server;
}

function guarded(route: Route, log: Logger) {
  return (req: Request, res: Response): void => {
    try {
      const result = route.handler(req, res);
      if (result) result.catch((error: unknown) => sendError(res, error, log));
    } catch (error) {
      sendError(res, error, log);
    }
  };
}

function noMatch(routes: Route[], req: Request & Partial<RouteExtras>): PeerkvError {
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
