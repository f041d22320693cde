/**
 * The one check every request passes before its handler runs: does it carry
 * what its route's permission asks for? Open routes pass; peer routes need
 * the cluster secret (and, with mutual TLS, a client certificate the node's
 * CA signed); client routes need a token with the permission, or the cluster
 * secret. Refusals are JSON errors (401 UNAUTHENTICATED, 403 FORBIDDEN) and
 * are logged at warn at most once per source per minute.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { PeerkvError } from '../errors.ts';
import type { Permission } from '../http/route.ts';
import { securityLimits } from '../limits.ts';
import { type Access, accessTo, clusterAccess, openAccess } from './access.ts';
import type { SecurityState } from './load-security.ts';

export interface AuthorizerOptions {
  readonly log: Logger;
  /** Peer routes also need a verified client certificate (mutual TLS). */
  readonly peerCertificateRequired: boolean;
  /** Monotonic clock, for the once-a-minute warning. */
  readonly monoMs: () => number;
}

const BEARER = /^Bearer +([\x21-\x7e]+) *$/i;

export class Authorizer {
  #state: SecurityState;
  readonly #options: AuthorizerOptions;
  readonly #warnedMonoMs = new Map<string, number>();

  constructor(state: SecurityState, options: AuthorizerOptions) {
    this.#state = state;
    this.#options = options;
  }

  /** Swaps in reloaded secrets (SIGHUP); requests already checked keep their answer. */
  replace(state: SecurityState): void {
    this.#state = state;
  }

  get state(): SecurityState {
    return this.#state;
  }

  /** The Authorization header for calls to peers, when there is a cluster secret. */
  peerAuthorization(): string | undefined {
    const secret = this.#state.clusterSecret;
    return secret === null ? undefined : `Bearer ${secret.reveal()}`;
  }

  /** What `req` may do on a route asking `permission`; throws 401/403 PeerkvErrors. */
  authorize(permission: Permission, req: IncomingMessage): Access {
    if (permission === 'open') return openAccess;
    try {
      return permission === 'peer' ? this.#peer(req) : this.#client(permission, req);
    } catch (error) {
      if (error instanceof PeerkvError) this.#warnOnce(req, permission, error);
      throw error;
    }
  }

  #peer(req: IncomingMessage): Access {
    const { clusterSecret, tokens } = this.#state;
    if (this.#options.peerCertificateRequired && (req.socket as TLSSocket).authorized !== true) {
      throw new PeerkvError(
        'FORBIDDEN',
        'peer routes need a client certificate signed by the cluster CA',
      );
    }
    if (clusterSecret === null) {
      if (tokens === null) return openAccess;
      throw unauthenticated('this node accepts no peer calls (it has no cluster secret)');
    }
    if (!clusterSecret.matches(bearerToken(req))) {
      throw unauthenticated('the cluster secret is wrong');
    }
    return clusterAccess;
  }

  #client(permission: Exclude<Permission, 'open' | 'peer'>, req: IncomingMessage): Access {
    const { clusterSecret, tokens } = this.#state;
    if (tokens === null) return openAccess;
    const token = bearerToken(req);
    if (clusterSecret?.matches(token)) return clusterAccess;
    const grant = tokens.find(token);
    if (grant === undefined) throw unauthenticated('the token is not recognised');
    if (!grant.permissions.has(permission)) {
      throw new PeerkvError('FORBIDDEN', `this token lacks the "${permission}" permission`);
    }
    return accessTo(grant.name, grant.prefixes);
  }

  #warnOnce(req: IncomingMessage, permission: Permission, error: PeerkvError): void {
    const source = req.socket.remoteAddress ?? 'unknown';
    const now = this.#options.monoMs();
    const last = this.#warnedMonoMs.get(source);
    if (last !== undefined && now - last < securityLimits.rejectLogIntervalMs) return;
    if (this.#warnedMonoMs.size >= securityLimits.rejectLogSourcesMax) this.#warnedMonoMs.clear();
    this.#warnedMonoMs.set(source, now);
    this.#options.log.warn(
      { source, permission, code: error.code, reason: error.message },
      'request refused by authentication (logged once a minute per source)',
    );
  }
}

/** The token of an `Authorization: Bearer <token>` header; never echoed in an error. */
function bearerToken(req: IncomingMessage): string {
  const header = req.headers.authorization;
  // Node keeps the first of repeated Authorization headers; a request with two is refused.
  if ((req.headersDistinct.authorization?.length ?? 0) > 1) {
    throw unauthenticated('more than one Authorization header');
  }
  if (header === undefined || header === '') {
    throw unauthenticated('missing Authorization header (expected "Bearer <token>")');
  }
  if (header.length > securityLimits.authorizationCharsMax) {
    throw unauthenticated(
      `Authorization header longer than ${securityLimits.authorizationCharsMax} characters`,
    );
  }
  const match = BEARER.exec(header);
  if (!match) throw unauthenticated('Authorization header must be "Bearer <token>"');
  return match[1]!;
}

function unauthenticated(message: string): PeerkvError {
  return new PeerkvError('UNAUTHENTICATED', message, {
    headers: { 'WWW-Authenticate': 'Bearer realm="peerkv"' },
  });
}
