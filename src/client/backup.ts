/**
 * `PeerkvClient.backup`: `GET /backup` of one node, streamed into a writable
 * as it arrives, with backpressure. The nodes are tried in turn (from the one
 * that answered last) until one starts sending: one that cannot be reached or
 * answers 502/503/504 (BACKUP_RUNNING, say) is skipped; any other error
 * answer is the caller's. Once bytes flow there is no going back to another
 * node: a copy cut short, or shorter than its Content-Length, throws
 * CLIENT_BACKUP_INCOMPLETE, and an answer that does not start like a SQLite
 * file throws CLIENT_BAD_ANSWER.
 *
 * This one call goes over node:http(s), not undici: undici 7.30's HTTP/1
 * parser throws an uncatchable assertion (`assert(!this.paused)`) when the
 * server closes the socket while a body is held back by a slow consumer
 * (nodejs/undici#5360, fixed upstream by #5474), and a backup streamed into
 * a disk or a pipe is exactly that consumer.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { pipeline } from 'node:stream/promises';
import {
  type AttemptRecord,
  PeerkvAbortError,
  PeerkvBadAnswerError,
  PeerkvClientError,
  PeerkvUnavailableError,
  responseError,
} from './errors.ts';
import { isRetryableStatus, nodeOrder } from './failover.ts';

/** How the client reaches a node: its token, the CA it trusts, its user agent. */
export interface BackupConnection {
  readonly token: string | undefined;
  readonly ca: string | Uint8Array | undefined;
  readonly userAgent: string;
}

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
/** An error answer is a small JSON body: read this much of it at most. */
const ERROR_BYTES_MAX = 64 * 1024;

export async function downloadBackup(
  connection: BackupConnection,
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
    let response: IncomingMessage;
    try {
      response = await openBackup(node, connection, timeoutMs, signal);
    } catch (error) {
      if (signal.aborted) throw new PeerkvAbortError(signal.reason, { attempts });
      attempts.push({ node, error: describe(error), code: errorCode(error) });
      continue;
    }
    if (response.statusCode !== 200) {
      const error = responseError(node, await readError(node, response), attempts);
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

/** Sends GET /backup; resolves with the answer once its headers are in, its body unread. */
function openBackup(
  node: string,
  connection: BackupConnection,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  const url = new URL('/backup', node);
  const headers: Record<string, string> = {
    accept: BACKUP_ACCEPT,
    'user-agent': connection.userAgent,
  };
  if (connection.token !== undefined) headers.authorization = `Bearer ${connection.token}`;
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const tls = connection.ca === undefined ? {} : { ca: caText(connection.ca) };
  return new Promise((resolve, reject) => {
    const request = send(url, { method: 'GET', headers, signal, agent: false, ...tls }, resolve);
    // The socket's inactivity bound: the wait for the copy, then every pause of the body.
    request.setTimeout(timeoutMs, () =>
      request.destroy(new Error(`no data from ${node} for ${timeoutMs} ms`)),
    );
    // Before the answer this rejects; after it, the body stream carries the error.
    request.once('error', reject);
    request.end();
  });
}

/** An error answer's JSON body (bounded). */
async function readError(
  node: string,
  response: IncomingMessage,
): Promise<{ status: number; json: unknown }> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of response) {
    bytes += (chunk as Buffer).length;
    if (bytes > ERROR_BYTES_MAX) {
      response.destroy();
      throw new PeerkvBadAnswerError(`${node} answered ${response.statusCode} with a huge body`);
    }
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return { status: response.statusCode ?? 0, json: text === '' ? null : JSON.parse(text) };
  } catch (cause) {
    throw new PeerkvBadAnswerError(
      `${node} answered ${response.statusCode} with a body that is not JSON`,
      { cause },
    );
  }
}

function caText(ca: string | Uint8Array): string | Buffer {
  return typeof ca === 'string' ? ca : Buffer.from(ca);
}

async function receive(
  node: string,
  response: IncomingMessage,
  destination: NodeJS.WritableStream,
  options: BackupOptions,
  signal: AbortSignal,
): Promise<BackupResult> {
  const headers = response.headers;
  const type = String(headers['content-type'] ?? '');
  if (!type.startsWith('application/vnd.sqlite3')) {
    response.destroy();
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
    await pipeline(response, counted, destination, { end: options.end ?? true, signal });
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
