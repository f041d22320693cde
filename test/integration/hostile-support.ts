// Shared by the hostile-*.test.ts and slow-clients.test.ts files: a seeded random generator, raw
// HTTP requests built byte by byte, and a lenient parse of the answer with the check that an answer
// to a hostile request is a well-formed refusal (never a 500, never silence, never a hang).
import fs from 'node:fs';
import net from 'node:net';
import { hasCompleteHttpResponse, sleep } from '../helpers/http.ts';

/** Answers to hostile requests come within this, or the request counts as a hang. */
export const EXCHANGE_TIMEOUT_MS = 6_000;
const UINT32 = 2 ** 32;
const ANSWER_BYTES_MAX = 1024 * 1024;
const EARLY_ANSWER_POLL_MS = 5;

/** The seed from `variable` when set (to replay a failure), else a fresh random one. */
export function seedFrom(variable: string): number {
  const given = process.env[variable];
  if (given !== undefined && given !== '') {
    const seed = Number(given);
    if (!Number.isInteger(seed) || seed < 0 || seed >= UINT32) {
      throw new Error(`${variable} must be an integer from 0 to 2^32-1, got "${given}"`);
    }
    return seed;
  }
  return Math.floor(Math.random() * UINT32);
}

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / UINT32;
  }

  /** An integer in [min, max], both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(0, items.length - 1)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  bytes(count: number): Buffer {
    const out = Buffer.alloc(count);
    for (let i = 0; i < count; i += 1) out[i] = this.int(0, 255);
    return out;
  }

  /** `count` characters drawn from `alphabet`. */
  text(count: number, alphabet: string): string {
    let out = '';
    for (let i = 0; i < count; i += 1) out += alphabet[this.int(0, alphabet.length - 1)];
    return out;
  }

  hex(count: number): string {
    return this.text(count, '0123456789abcdef');
  }
}

export interface RequestParts {
  /** Header lines after the request line, in order; Host and Connection: close come first. */
  headers?: readonly (readonly [string, string])[];
  body?: string | Buffer;
  /** 'auto' (default) adds Content-Length for the body; 'none' leaves framing to `headers`. */
  framing?: 'auto' | 'none';
  /** Leave out `Connection: close` (to see what a keep-alive client gets). */
  keepAlive?: boolean;
}

/** The bytes of one HTTP/1.1 request; the request target goes out exactly as given. */
export function buildRequest(method: string, target: string, parts: RequestParts = {}): Buffer {
  const body = parts.body === undefined ? Buffer.alloc(0) : Buffer.from(parts.body);
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1'];
  if (parts.keepAlive !== true) lines.push('Connection: close');
  for (const [name, value] of parts.headers ?? []) lines.push(`${name}: ${value}`);
  if ((parts.framing ?? 'auto') === 'auto') lines.push(`Content-Length: ${body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
}

export interface RawAnswer {
  /** Status of the final answer (a 100 Continue before it is skipped); undefined when none came. */
  status: number | undefined;
  headers: Record<string, string>;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
  text: string;
  outcome: 'until' | 'closed' | 'error' | 'timeout';
  errorCode: string | undefined;
  elapsedMs: number;
}

export interface ExchangeOptions {
  timeoutMs?: number;
  /** Pause between chunks: a slow client. */
  chunkDelayMs?: number;
  /** Wait up to this long after the first chunk for an answer before sending the rest. */
  earlyAnswerMs?: number;
}

/**
 * Sends raw bytes on a fresh connection and parses whatever answer comes back: the exchange ends at
 * a complete answer, at the close (also after a failed write: EPIPE or ECONNRESET once the server
 * refused the body), or at the deadline, with everything read by then. Rejects only when the
 * connection cannot be made.
 */
export function exchange(
  port: number,
  raw: Buffer | readonly Buffer[],
  options: ExchangeOptions = {},
): Promise<RawAnswer> {
  const chunks: Buffer[] = Buffer.isBuffer(raw) ? [raw] : raw.slice();
  const startedAt = performance.now();
  return new Promise<RawAnswer>((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let data = '';
    let errorCode: string | undefined;
    let connected = false;
    let settled = false;
    const finish = (outcome: RawAnswer['outcome']): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      socket.destroy();
      const elapsedMs = performance.now() - startedAt;
      resolve({ ...parseAnswer(skipContinue(data)), outcome, errorCode, elapsedMs });
    };
    const deadline = setTimeout(() => finish('timeout'), options.timeoutMs ?? EXCHANGE_TIMEOUT_MS);
    socket.on('connect', () => {
      connected = true;
      void writeAll(socket, chunks, options, () => settled);
    });
    socket.on('data', (chunk: Buffer) => {
      if (data.length + chunk.length > ANSWER_BYTES_MAX) return finish('error');
      data += chunk.toString('latin1');
      if (hasCompleteHttpResponse(skipContinue(data))) finish('until');
    });
    socket.on('close', () => finish(errorCode === undefined ? 'closed' : 'error'));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      errorCode = error.code;
      if (connected) return; // 'close' follows and ends the exchange with what was read
      settled = true;
      clearTimeout(deadline);
      reject(new Error(`connect to 127.0.0.1:${port} failed (${error.code})`, { cause: error }));
    });
  });
}

/**
 * Writes the chunks in order and stops quietly once the server has answered or closed. With
 * `earlyAnswerMs`, it waits that long after the first chunk (the head) for an early answer, as
 * curl does with Expect: 100-continue: a node that refuses a body by its declared length answers
 * at once and closes, and a write into that closed connection would destroy the socket (in
 * node:net) before the answer is read.
 */
async function writeAll(
  socket: net.Socket,
  chunks: Buffer[],
  options: ExchangeOptions,
  answered: () => boolean,
): Promise<void> {
  for (const [index, chunk] of chunks.entries()) {
    if (index === 1 && options.earlyAnswerMs !== undefined) {
      const until = performance.now() + options.earlyAnswerMs;
      while (!answered() && performance.now() < until) await sleep(EARLY_ANSWER_POLL_MS);
    }
    if (index > 0 && options.chunkDelayMs !== undefined) await sleep(options.chunkDelayMs);
    if (answered() || socket.destroyed || !socket.writable) return;
    const written = await new Promise<boolean>((resolve) => {
      socket.write(chunk, (error) => resolve(error === undefined || error === null));
    });
    if (!written) return;
  }
}

function skipContinue(data: string): string {
  return data.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '');
}

function parseAnswer(data: string): Pick<RawAnswer, 'status' | 'headers' | 'json' | 'text'> {
  const headerEnd = data.indexOf('\r\n\r\n');
  const status = /^HTTP\/1\.[01] (\d{3}) /.exec(data)?.[1];
  if (headerEnd < 0 || status === undefined) {
    return { status: undefined, headers: {}, json: undefined, text: data.slice(0, 300) };
  }
  const headers: Record<string, string> = {};
  for (const line of data.slice(0, headerEnd).split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0)
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const text = Buffer.from(data.slice(headerEnd + 4), 'latin1').toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // Not JSON: json stays undefined and the shape checks report the text.
    json = undefined;
  }
  return { status: Number(status), headers, json, text };
}

/** What an answer may be: refusal statuses, and whether a 2xx is fine (a read of a weird path). */
export interface Expectation {
  statuses: readonly number[];
  readOk?: boolean;
}

/** Why `answer` is not an acceptable answer to a hostile request, or undefined when it is. */
export function answerProblem(answer: RawAnswer, expect: Expectation): string | undefined {
  if (answer.outcome === 'timeout') return `no answer within ${EXCHANGE_TIMEOUT_MS} ms (a hang)`;
  if (answer.status === undefined) {
    return `closed without an HTTP answer (${answer.outcome} ${answer.errorCode ?? ''}) ${answer.text}`;
  }
  const seen = `${answer.status} ${answer.text.slice(0, 200)}`;
  // Load shed before a byte of the body is read (four stalled /replicate bodies in the mix hold
  // every replication slot for up to the request timeout): a bounded refusal, nothing changed.
  const shed =
    answer.status === 503 &&
    (answer.json as { code?: unknown } | undefined)?.code === 'OVERLOADED' &&
    (answer.headers['retry-after'] ?? '') !== '';
  if (shed) return errorShapeProblem(answer.json, seen);
  if (answer.status >= 500) return `server error: ${seen}`;
  const ok = answer.status >= 200 && answer.status < 300;
  if (ok && expect.readOk !== true) return `accepted a hostile request: ${seen}`;
  if (!ok && !expect.statuses.includes(answer.status)) {
    return `status ${answer.status}, expected one of ${expect.statuses.join('/')}: ${seen}`;
  }
  if (answer.status === 405 && (answer.headers.allow ?? '') === '') {
    return `405 without an Allow header: ${seen}`;
  }
  if (!/^application\/json/.test(answer.headers['content-type'] ?? '')) {
    return `not JSON (content-type ${answer.headers['content-type'] ?? 'missing'}): ${seen}`;
  }
  if (ok) return answer.json === undefined ? `2xx body is not JSON: ${seen}` : undefined;
  return errorShapeProblem(answer.json, seen);
}

/** Undefined when `body` is exactly `{"error": "<non-empty>", "code": "<CODE>"}`. */
export function errorShapeProblem(body: unknown, seen: string): string | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return `error body is not a JSON object: ${seen}`;
  }
  const keys = Object.keys(body).sort().join(',');
  if (keys !== 'code,error') return `error body has keys ${keys}: ${seen}`;
  const { error, code } = body as { error: unknown; code: unknown };
  if (typeof error !== 'string' || error === '') return `empty error message: ${seen}`;
  if (typeof code !== 'string' || !/^[A-Z_]+$/.test(code)) return `bad error code: ${seen}`;
  return undefined;
}

/** pino lines at error level or above (an internal fault that became a 500, say). */
export function errorLogLines(logPath: string): string[] {
  return fs
    .readFileSync(logPath, 'utf8')
    .split('\n')
    .filter((line) => /"level":(50|60)/.test(line));
}
