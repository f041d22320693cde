/**
 * `PeerkvClient.backup`: `GET /backup` of one node, streamed into a writable
 * as it arrives, with backpressure. The nodes are tried in turn (from the one
 * that answered last) until one starts sending: one that cannot be reached or
 * answers 502/503/504 (BACKUP_RUNNING, say) is skipped; any other error
 * answer is the caller's. Once bytes flow there is no going back to another
 * node: a copy cut short, or shorter than its Content-Length, throws
 * CLIENT_BACKUP_INCOMPLETE, and an answer that does not start like a SQLite
 * file throws CLIENT_BAD_ANSWER.
 */

import { pipeline } from 'node:stream/promises';
import type { Dispatcher } from 'undici';
import {
  type AttemptRecord,
  PeerkvAbortError,
  PeerkvBadAnswerError,
  PeerkvClientError,
  PeerkvUnavailableError,
  responseError,
} from './errors.ts';
import { isRetryableStatus, nodeOrder } from './failover.ts';
import type { Transport } from './transport.ts';

export interface BackupOptions {
  readonly signal?: AbortSignal;
  /**
   * How long to wait for a node to take its copy (it answers once the copy is
   * complete), and the longest pause while it is sent (default 600,000 ms).
   */
  readonly timeoutMs?: number;
  /** End `destination` once the copy is in (default true; false for process.stdout). */
  readonly end?: boolean;
}

export interface BackupResult {
  /** The node that sent the copy, its id and the last change sequence the copy holds. */
  readonly node: string;
  readonly nodeId: string;
  readonly seq: number;
  readonly bytes: number;
}

const TIMEOUT_MS_DEFAULT = 600_000;
const SQLITE_MAGIC = Buffer.from('SQLite format 3\u0000', 'latin1');
const BACKUP_ACCEPT = 'application/vnd.sqlite3, application/json';

export async function downloadBackup(
  transport: Transport,
  nodes: readonly string[],
  start: number,
  destination: NodeJS.WritableStream,
  options: BackupOptions,
): Promise<{ index: number; result: BackupResult }> {
  const timeoutMs = options.timeoutMs ?? TIMEOUT_MS_DEFAULT;
  const signal = options.signal ?? new AbortController().signal;
  if (signal.aborted) throw new PeerkvAbortError(signal.reason);
  const attempts: AttemptRecord[] = [];
  const order = nodeOrder(nodes.length, start);
  for (const [position, index] of order.entries()) {
    const node = nodes[index]!;
    const last = position === order.length - 1;
    let response: Dispatcher.ResponseData;
    try {
      const exchange = { method: 'GET', path: '/backup' } as const;
      response = await transport.open(node, exchange, signal, timeoutMs, BACKUP_ACCEPT);
    } catch (error) {
      if (signal.aborted) throw new PeerkvAbortError(signal.reason, { attempts });
      attempts.push({ node, error: describe(error), code: errorCode(error) });
      continue;
    }
    if (response.statusCode !== 200) {
      const error = responseError(node, await transport.read(node, response), attempts);
      if (!isRetryableStatus(error.status) || last) throw error;
      attempts.push({ node, error: error.message, code: error.code, status: error.status });
      continue;
    }
    return { index, result: await receive(node, response, destination, options, signal) };
  }
  const final = attempts.at(-1);
  throw new PeerkvUnavailableError(
    `no node could send a backup (last: ${final?.node} ${final?.error})`,
    { attempts },
  );
}

async function receive(
  node: string,
  response: Dispatcher.ResponseData,
  destination: NodeJS.WritableStream,
  options: BackupOptions,
  signal: AbortSignal,
): Promise<BackupResult> {
  const headers = response.headers;
  const type = String(headers['content-type'] ?? '');
  if (!type.startsWith('application/vnd.sqlite3')) {
    response.body.destroy();
    throw new PeerkvBadAnswerError(`${node} answered a backup as ${type || 'no content type'}`);
  }
  const expected = Number(headers['content-length']);
  let bytes = 0;
  const counted = async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      checkMagic(node, chunk, bytes);
      bytes += chunk.length;
      yield chunk;
    }
  };
  try {
    await pipeline(response.body, counted, destination, { end: options.end ?? true, signal });
  } catch (error) {
    if (signal.aborted) throw new PeerkvAbortError(signal.reason);
    if (error instanceof PeerkvClientError) throw error;
    throw incomplete(node, bytes, expected, describe(error), error);
  }
  if (Number.isFinite(expected) ? bytes !== expected : bytes < SQLITE_MAGIC.length) {
    throw incomplete(node, bytes, expected, 'the answer ended early');
  }
  return {
    node,
    nodeId: String(headers['x-peerkv-node-id'] ?? ''),
    seq: Number(headers['x-peerkv-backup-seq'] ?? Number.NaN),
    bytes,
  };
}

/** The first bytes of the answer must be SQLite's file header. */
function checkMagic(node: string, chunk: Buffer, offset: number): void {
  if (offset >= SQLITE_MAGIC.length) return;
  const wanted = SQLITE_MAGIC.subarray(offset, offset + chunk.length);
  if (!chunk.subarray(0, wanted.length).equals(wanted)) {
    throw new PeerkvBadAnswerError(`${node} sent a backup that is not a SQLite file`);
  }
}

function incomplete(
  node: string,
  bytes: number,
  expected: number,
  why: string,
  cause?: unknown,
): PeerkvClientError {
  const of = Number.isFinite(expected) ? ` of ${expected}` : '';
  return new PeerkvClientError(
    'CLIENT_BACKUP_INCOMPLETE',
    `the backup from ${node} stopped after ${bytes}${of} bytes (${why})`,
    { cause },
  );
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'CLIENT_NETWORK';
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
