// A fake peerkv peer for tests: a node:http server on a free loopback port that answers /ping like
// a peerkv node (node id and time headers) and hands every other request to a handler the test
// gives, so a test can answer the sync routes badly (huge, endless, slow, malformed) and count
// what the node under test asked for.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const REQUEST_BODY_BYTES_MAX = 64 * 1024 * 1024;
const WRITE_CHUNK_BYTES = 1024 * 1024;

export interface FakeRequest {
  readonly method: string;
  readonly path: string;
  readonly body: string;
}

export type FakeHandler = (request: FakeRequest, res: http.ServerResponse) => void | Promise<void>;

export interface FakePeerOptions {
  readonly nodeId: string;
  /** Answers everything but GET /ping (or /ping too, when `ownPing` is set). */
  readonly handler: FakeHandler;
  /** Let the handler answer /ping as well. */
  readonly ownPing?: boolean;
}

export class FakePeer {
  readonly server: http.Server;
  /** How many requests came per "METHOD path" (path without the query). */
  readonly counts = new Map<string, number>();
  readonly #options: FakePeerOptions;
  readonly #open = new Set<http.ServerResponse>();

  private constructor(options: FakePeerOptions) {
    this.#options = options;
    this.server = http.createServer((req, res) => this.#serve(req, res));
  }

  static async start(options: FakePeerOptions): Promise<FakePeer> {
    const peer = new FakePeer(options);
    await new Promise<void>((resolve, reject) => {
      peer.server.once('error', reject);
      peer.server.listen(0, '127.0.0.1', () => resolve());
    });
    return peer;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  count(method: string, path: string): number {
    return this.counts.get(`${method} ${path}`) ?? 0;
  }

  async close(): Promise<void> {
    for (const res of this.#open) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  #serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    const name = `${req.method} ${path}`;
    this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
    this.#open.add(res);
    res.once('close', () => this.#open.delete(res));
    const chunks: Buffer[] = [];
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > REQUEST_BODY_BYTES_MAX) req.destroy();
      else chunks.push(chunk);
    });
    req.on('end', () => {
      const request = { method: req.method ?? 'GET', path, body: Buffer.concat(chunks).toString() };
      if (path === '/ping' && this.#options.ownPing !== true) {
        answerPing(res, this.#options.nodeId);
        return;
      }
      Promise.resolve(this.#options.handler(request, res)).catch((error: unknown) => {
        process.stderr.write(`fake peer handler failed: ${String(error)}\n`);
        res.destroy();
      });
    });
  }
}

export function pingHeaders(nodeId: string): Record<string, string> {
  return { 'X-Peerkv-Node-Id': nodeId, 'X-Peerkv-Time-Ms': String(Date.now()) };
}

export function answerPing(res: http.ServerResponse, nodeId: string): void {
  answerJson(res, 200, { message: 'pong' }, pingHeaders(nodeId));
}

export function answerJson(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

/**
 * Streams `bytes` of filler after `head` (chunked, no Content-Length), honouring backpressure,
 * and stops as soon as the reader hangs up. Resolves with the bytes actually written.
 */
export async function streamFiller(
  res: http.ServerResponse,
  parts: { head: string; bytes: number; tail?: string },
  headers: Record<string, string> = {},
): Promise<number> {
  const { head, bytes, tail = '' } = parts;
  assert.ok(bytes >= 0);
  res.writeHead(200, { ...headers, 'Content-Type': 'application/json' });
  const filler = Buffer.alloc(WRITE_CHUNK_BYTES, 0x61);
  let written = 0;
  res.write(head);
  while (written < bytes && !res.destroyed) {
    const chunk = filler.subarray(0, Math.min(WRITE_CHUNK_BYTES, bytes - written));
    written += chunk.length;
    if (!res.write(chunk)) {
      await new Promise<void>((resolve) => {
        res.once('drain', resolve);
        res.once('close', resolve);
      });
    }
  }
  if (!res.destroyed) res.end(tail);
  return written;
}
