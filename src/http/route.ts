/**
 * What a route is: a method, a path pattern, the permission it needs and its
 * handler. The HTTP layer (src/http/app.ts) checks the permission once, before
 * the handler runs, and hands the handler the request's `access` so it can ask
 * whether a key is in scope.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Access } from '../security/access.ts';

/**
 * - `open`: anyone (`/ping`, `/healthz`, `/readyz`).
 * - `read` / `write` / `admin`: a client token with that permission (or the cluster secret).
 * - `peer`: the cluster secret only (`/replicate`, `/sync/*`), and with mutual TLS a
 *   client certificate the node's CA signed.
 */
export type Permission = 'open' | 'read' | 'write' | 'admin' | 'peer';

export interface RouteExtras {
  path: string;
  query: Record<string, unknown>;
  /** Who is asking and which keys they may touch; set before the handler runs. */
  access: Access;
}

export type Request = IncomingMessage & RouteExtras;

export type Handler = (req: Request, res: ServerResponse) => Promise<void> | void;

export interface Route {
  readonly method: string;
  readonly pattern: string;
  readonly permission: Permission;
  readonly handler: Handler;
}
