/**
 * How the control logic reaches a peer: a ping and a JSON call. The running
 * node uses PeerClient (undici, src/replication/peer-client.ts); the simulator
 * (test/sim/) uses an in-memory network that delays, drops and cuts. Failures
 * are PeerCallErrors with a stable code, so callers decide on a code, not on
 * a message.
 */

import type { AckReport } from '../tombstones/stability.ts';

export type PeerErrorCode =
  /** No answer within the timeout. */
  | 'PEER_TIMEOUT'
  /** The connection failed or broke (refused, reset, closed). */
  | 'PEER_UNREACHABLE'
  /** The peer answered with a non-2xx status (see `status`). */
  | 'PEER_STATUS'
  /** The answer broke the protocol: not JSON, no node id, too large. */
  | 'PEER_BAD_ANSWER';

export class PeerCallError extends Error {
  readonly code: PeerErrorCode;
  readonly status: number | undefined;
  constructor(
    message: string,
    options: { code?: PeerErrorCode; status?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'PeerCallError';
    this.status = options.status;
    this.code = options.code ?? (options.status === undefined ? 'PEER_UNREACHABLE' : 'PEER_STATUS');
  }
}

export interface PingAnswer {
  readonly nodeId: string;
  /** The peer's wall clock when it answered. */
  readonly timeWallMs: number;
  /** Our wall clock when we sent the ping. */
  readonly sentAtWallMs: number;
  readonly rttMs: number;
  /** The peer's --max-value-bytes (X-Peerkv-Max-Value-Bytes); null when it does not say. */
  readonly valueBytesMax: number | null;
  /** The answering process's nonce (X-Peerkv-Instance); null from a peer that sends none. */
  readonly instanceId: string | null;
  /** The highest version timestamp the peer's clock has reached (X-Peerkv-Clock); null when it does not say. */
  readonly clockHigh: number | null;
  /** The peer's tombstone horizon and acknowledgements (X-Peerkv-Horizon, X-Peerkv-Acked); null when it does not say. */
  readonly ackReport: AckReport | null;
}

export interface PeerAnswer {
  readonly json: unknown;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly bytes: number;
}

export interface PeerTransport {
  readonly url: string;
  ping(wallMs: () => number): Promise<PingAnswer>;
  /** Calls the peer; resolves with the parsed JSON of a 2xx answer, else throws PeerCallError. */
  call(method: 'GET' | 'POST', path: string, body?: string): Promise<PeerAnswer>;
  close(): Promise<void>;
}
