/**
 * The one way peerkv reaches a peer: an undici Pool per peer (keep-alive,
 * a few connections), every call bounded by the configured timeout in each
 * phase and in total, and every answer bounded in size by what its route can
 * honestly hold (src/limits.ts `peerResponseBytesMax`). A ping's body is
 * drained up to a few KiB and never parsed: only its headers are used.
 */
import { peerResponseBytesMax, replicationLimits } from '../limits.ts';
import { parseAckReport } from '../tombstones/stability.ts';
import { NODE_ID_PATTERN } from '../version.ts';
import {
  type PeerAnswer,
  PeerCallError,
  type PeerTransport,
  type PingAnswer,
} from './peer-transport.ts';
import { type Connector, Pool } from './undici-core.ts';

export { PeerCallError, type PingAnswer } from './peer-transport.ts';

export interface PeerClientOptions {
  readonly timeoutMs: number;
  /** Our value limit: it sizes the bound on pages of rows. */
  readonly valueBytesMax: number;
  readonly connections: number;
  /** The Authorization header every call carries (the cluster secret), read per call. */
  readonly authorization: () => string | undefined;
  /** For https:// peers: the connector of the TLS files in force (CA, our certificate). */
  readonly connect?: (() => Connector) | undefined;
}

export class PeerClient implements PeerTransport {
  readonly url: string;
  readonly #pool: Pool;
  readonly #options: PeerClientOptions;

  constructor(url: string, options: PeerClientOptions) {
    this.url = url;
    this.#options = options;
    this.#pool = new Pool(url, {
      connections: options.connections,
      pipelining: 1,
      connectTimeout: options.timeoutMs,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 4_000,
      ...(options.connect === undefined ? {} : { connect: connectWith(options.connect) }),
    });
  }

  async ping(wallMs: () => number): Promise<PingAnswer> {
    const sentAtWallMs = wallMs();
    const started = performance.now();
    const response = await this.#request('GET', '/ping');
    // Only the headers matter; the body is drained (not parsed) up to a small bound.
    await response.body
      .dump({ limit: replicationLimits.pingResponseBytesMax })
      .catch((cause: unknown) => {
        throw new PeerCallError(`GET /ping answer failed: ${describe(cause)}`, {
          code: codeOf(cause),
          cause,
        });
      });
    if (response.statusCode < 200 || response.statusCode > 299) {
      throw new PeerCallError(`GET /ping answered ${response.statusCode}`, {
        status: response.statusCode,
      });
    }
    const headers = response.headers;
    const rttMs = performance.now() - started;
    const nodeId = headers['x-peerkv-node-id'];
    const timeWallMs = Number(headers['x-peerkv-time-ms']);
    if (
      typeof nodeId !== 'string' ||
      !NODE_ID_PATTERN.test(nodeId) ||
      !Number.isFinite(timeWallMs)
    ) {
      throw new PeerCallError('ping answer carries no peerkv node id', {
        code: 'PEER_BAD_ANSWER',
      });
    }
    const limit = Number(headers['x-peerkv-max-value-bytes']);
    const valueBytesMax = Number.isSafeInteger(limit) && limit > 0 ? limit : null;
    const instance = headers['x-peerkv-instance'];
    const instanceId =
      typeof instance === 'string' && NODE_ID_PATTERN.test(instance) ? instance : null;
    const clock = Number(headers['x-peerkv-clock']);
    const clockHigh = Number.isSafeInteger(clock) && clock > 0 ? clock : null;
    const ackReport = parseAckReport(
      headers['x-peerkv-horizon'],
      headers['x-peerkv-acked'],
      headers['x-peerkv-covered'],
    );
    return {
      nodeId,
      timeWallMs,
      sentAtWallMs,
      rttMs,
      valueBytesMax,
      instanceId,
      clockHigh,
      ackReport,
    };
  }

  /** Calls the peer; resolves with the parsed JSON of a 2xx answer. */
  async call(method: 'GET' | 'POST', path: string, body?: string): Promise<PeerAnswer> {
    const response = await this.#request(method, path, body);
    const text = await this.#readBounded(response.body, method, path);
    if (response.statusCode < 200 || response.statusCode > 299) {
      throw new PeerCallError(
        `${method} ${path} answered ${response.statusCode}: ${text.slice(0, 200)}`,
        {
          status: response.statusCode,
        },
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (cause) {
      throw new PeerCallError(`${method} ${path} answered invalid JSON`, {
        code: 'PEER_BAD_ANSWER',
        cause,
      });
    }
    return { json, headers: response.headers, bytes: Buffer.byteLength(text) };
  }

  #headers(json: boolean): Record<string, string> {
    const headers: Record<string, string> = {};
    if (json) headers['content-type'] = 'application/json';
    const authorization = this.#options.authorization();
    if (authorization !== undefined) headers.authorization = authorization;
    return headers;
  }

  close(): Promise<void> {
    return this.#pool.close();
  }

  async #request(method: 'GET' | 'POST', path: string, body?: string) {
    try {
      return await this.#pool.request({
        method,
        path,
        body,
        headers: this.#headers(body !== undefined),
        signal: AbortSignal.timeout(this.#options.timeoutMs),
      });
    } catch (cause) {
      throw new PeerCallError(`${method} ${path} failed: ${describe(cause)}`, {
        code: codeOf(cause),
        cause,
      });
    }
  }

  async #readBounded(
    body: AsyncIterable<Buffer> & { destroy(): void },
    method: string,
    path: string,
  ) {
    const chunks: Buffer[] = [];
    const bytesMax = peerResponseBytesMax(path, this.#options.valueBytesMax);
    let bytes = 0;
    try {
      for await (const chunk of body) {
        bytes += chunk.length;
        if (bytes > bytesMax) {
          body.destroy();
          throw new PeerCallError(`${method} ${path} answer exceeds ${bytesMax} bytes`, {
            code: 'PEER_BAD_ANSWER',
          });
        }
        chunks.push(chunk);
      }
    } catch (cause) {
      if (cause instanceof PeerCallError) throw cause;
      throw new PeerCallError(`${method} ${path} answer failed: ${describe(cause)}`, {
        code: codeOf(cause),
        cause,
      });
    }
    return Buffer.concat(chunks, bytes).toString('utf8');
  }
}

/** A timeout (our AbortSignal.timeout, or one of undici's phase timeouts) or a broken connection. */
function codeOf(cause: unknown): 'PEER_TIMEOUT' | 'PEER_UNREACHABLE' {
  const name = cause instanceof Error ? cause.name : '';
  const code = String((cause as { code?: unknown } | null)?.code ?? '');
  const timedOut =
    name === 'TimeoutError' ||
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT';
  return timedOut ? 'PEER_TIMEOUT' : 'PEER_UNREACHABLE';
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code ? `${code} ${error.message}` : error.message;
  }
  return String(error);
}

/** A connector that asks for the current one at each new connection (certificates reload). */
function connectWith(current: () => Connector): Connector {
  return (options, callback) => current()(options, callback);
}
