// Helpers shared by the node-*.test.ts files: error-shape checks, raw HTTP exchanges parsed into
// status/headers/body, and spawning peerkv commands (CLI, bin, cluster) with captured output.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { getJson, type HttpResult, hasCompleteHttpResponse, rawRequest } from '../helpers/http.ts';
import { freePort, MAIN_ENTRY, PROJECT_ROOT } from '../helpers/node-process.ts';

export const VERSION_PATTERN = /^[0-9a-f]{14}-[0-9a-f]{16}$/;
export const NODE_ID_PATTERN = /^[0-9a-f]{16}$/;
const OUTPUT_BYTES_MAX = 4 * 1024 * 1024;
const CLI_TIMEOUT_MS_DEFAULT = 15_000;
const CONSECUTIVE_PORT_TRIES_MAX = 50;

/** The parts of an answer the error checks look at (HttpResult and RawHttpResult both fit). */
export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  text: string;
}

/** Asserts a JSON error answer `{"error": "<non-empty>", "code": code}` with `status`. */
export function assertError(answer: Answer, status: number, code: string, what = ''): void {
  const context = `${what} -> ${answer.status} ${answer.text.slice(0, 300)}`;
  assert.notEqual(answer.status, 500, `never a 500: ${context}`);
  assert.equal(answer.status, status, context);
  assert.match(answer.headers['content-type'] ?? '', /^application\/json/, context);
  const body = answer.body;
  assert.ok(typeof body === 'object' && body !== null && !Array.isArray(body), context);
  assert.deepEqual(Object.keys(body).sort(), ['code', 'error'], context);
  const { error, code: actual } = body as { error: unknown; code: unknown };
  assert.ok(typeof error === 'string' && error.length > 0, context);
  assert.equal(actual, code, context);
}

/** The node's `/store/hash`, checked for shape. */
export async function storeHash(url: string): Promise<string> {
  const answer = await getJson(`${url}/store/hash`);
  assert.equal(answer.status, 200, answer.text);
  const match = /^\{"hash":"([0-9a-f]{16,})"\}$/.exec(answer.text);
  assert.ok(match?.[1] !== undefined, `unexpected /store/hash body ${answer.text}`);
  return match[1];
}

/** GET /store/key?key=<key>, as HttpResult. */
export function readKey(url: string, key: string): Promise<HttpResult> {
  return getJson(`${url}/store/key?${new URLSearchParams({ key })}`);
}

export interface RawHttpResult extends Answer {
  outcome: string;
}

/**
 * Sends one request as raw bytes (any path, any body bytes, any framing) and parses the answer.
 * `body` may be a Buffer; Content-Length is added unless `headers` frames the body itself.
 */
export async function rawHttp(
  port: number,
  method: string,
  target: string,
  options: { headers?: Record<string, string>; body?: string | Buffer; chunks?: Buffer[] } = {},
): Promise<RawHttpResult> {
  const body = options.body === undefined ? Buffer.alloc(0) : Buffer.from(options.body);
  const headers: Record<string, string> = {
    Host: `127.0.0.1:${port}`,
    Connection: 'close',
    ...options.headers,
  };
  const framed = Object.keys(headers).some((name) =>
    ['content-length', 'transfer-encoding'].includes(name.toLowerCase()),
  );
  if (!framed) headers['Content-Length'] = String(body.length);
  const head = `${method} ${target} HTTP/1.1\r\n${Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('')}\r\n`;
  const payload = [Buffer.from(head, 'latin1'), body, ...(options.chunks ?? [])];
  const result = await rawRequest(port, payload, { until: hasCompleteHttpResponse });
  return { ...parseRawResponse(result.data), outcome: result.outcome };
}

function parseRawResponse(data: string): Answer {
  const headerEnd = data.indexOf('\r\n\r\n');
  assert.ok(headerEnd > 0, `no complete HTTP answer: ${JSON.stringify(data.slice(0, 300))}`);
  const [statusLine = '', ...lines] = data.slice(0, headerEnd).split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1];
  assert.ok(status !== undefined, `bad status line ${statusLine}`);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const text = Buffer.from(data.slice(headerEnd + 4), 'latin1').toString('utf8');
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: the checks then fail on the shape, showing the text.
  }
  return { status: Number(status), headers, body, text };
}

/** Temp dirs made by a test file, removed together in after(). */
export class TempDirs {
  private readonly dirs: string[] = [];

  async make(prefix = 'peerkv-node-test-'): Promise<string> {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  async removeAll(): Promise<void> {
    if (process.env.PEERKV_KEEP_TEST_DIRS === '1') return;
    const dirs = this.dirs.splice(0);
    await Promise.all(dirs.map((dir) => fsp.rm(dir, { recursive: true, force: true })));
  }
}

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * A peerkv command run as a child process with stdout and stderr captured. `detached` puts it in
 * its own process group so killGroup() also reaches the processes it started (cluster nodes).
 */
export class Spawned {
  readonly child: ChildProcess;
  readonly exited: Promise<Finished>;
  stdout = '';
  stderr = '';
  private readonly detached: boolean;
  private done = false;

  constructor(args: readonly string[], options: { detached?: boolean } = {}) {
    const env: NodeJS.ProcessEnv = { ...process.env };
    // Set by node --test for its own children; the command under test is not one of them.
    delete env.NODE_TEST_CONTEXT;
    this.detached = options.detached === true;
    this.child = spawn(process.execPath, [...args], {
      cwd: PROJECT_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: this.detached,
    });
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      if (this.stdout.length < OUTPUT_BYTES_MAX) this.stdout += chunk;
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      if (this.stderr.length < OUTPUT_BYTES_MAX) this.stderr += chunk;
    });
    this.exited = new Promise<Finished>((resolve) => {
      // 'close' waits for the pipes to drain, so stdout and stderr are complete.
      this.child.once('close', (code, signal) => {
        this.done = true;
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      });
      this.child.once('error', (err) => {
        this.done = true;
        resolve({ code: null, signal: null, stdout: this.stdout, stderr: String(err) });
      });
    });
  }

  get running(): boolean {
    return !this.done;
  }

  /** Waits for the exit; past the deadline the process (group) is killed and the wait fails. */
  async waitExit(timeoutMs: number): Promise<Finished> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.killGroup();
        reject(
          new Error(`still running after ${timeoutMs} ms\nstdout: ${this.stdout.slice(-2000)}`),
        );
      }, timeoutMs);
    });
    return Promise.race([this.exited, expired]).finally(() => clearTimeout(timer));
  }

  /**
   * SIGKILL to the process while it runs, and to its whole process group when it was spawned
   * detached (so the nodes a cluster process started go with it).
   */
  killGroup(): void {
    if (!this.running || this.child.pid === undefined) return;
    try {
      if (this.detached) process.kill(-this.child.pid, 'SIGKILL');
      else this.child.kill('SIGKILL');
    } catch (err) {
      // ESRCH: it exited between the check and the kill; nothing is left to stop.
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
}

/** Spawns `node --import tsx src/main.ts ...args`. */
export function spawnPeerkv(
  args: readonly string[],
  options: { detached?: boolean } = {},
): Spawned {
  return new Spawned(['--import', 'tsx', MAIN_ENTRY, ...args], options);
}

/** Runs `peerkv ...args` to its exit and returns its code and output. */
export function runPeerkv(
  args: readonly string[],
  timeoutMs = CLI_TIMEOUT_MS_DEFAULT,
): Promise<Finished> {
  return spawnPeerkv(args).waitExit(timeoutMs);
}

/** Polls GET /ping until it answers pong. */
export async function pingOk(url: string): Promise<boolean> {
  const answer = await getJson(`${url}/ping`, { timeoutMs: 1_000 });
  return answer.status === 200 && answer.text === '{"message":"pong"}';
}

/** True when nothing accepts a TCP connection on 127.0.0.1:port. */
export function portRefuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/** Holds a listening socket on 127.0.0.1:port until close(). */
export async function occupyPort(port: number): Promise<net.Server> {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return server;
}

export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A base port B such that B .. B+count-1 were all free at once when checked. */
export async function consecutiveFreePorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < CONSECUTIVE_PORT_TRIES_MAX; attempt += 1) {
    const base = await freePort();
    if (base + count - 1 > 65535) continue;
    const held: net.Server[] = [];
    try {
      for (let offset = 0; offset < count; offset += 1) held.push(await occupyPort(base + offset));
      return base;
    } catch {
      // One of the ports is taken: try another base.
    } finally {
      await Promise.all(held.map(closeServer));
    }
  }
  throw new Error(`no ${count} consecutive free ports after ${CONSECUTIVE_PORT_TRIES_MAX} tries`);
}

/** Runs `worker` over `items` with at most `width` in flight; results keep the items' order. */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  width: number,
  worker: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await worker(items[index] as T, index);
    }
  });
  await Promise.all(lanes);
  return results;
}
