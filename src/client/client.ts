/**
 * The peerkv client: one object over a list of nodes. Each call goes to the
 * node that last answered; if that one cannot be reached, times out or
 * answers 502/503/504, the call moves on to the next node after a capped,
 * jittered backoff, all within one overall deadline (`timeoutMs`). Any other
 * error answer (a 4xx, a 500) is the caller's answer and is not retried.
 * Every call takes an AbortSignal.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type BackupConnection,
  type BackupOptions,
  type BackupResult,
  downloadBackup,
} from './backup.ts';
import {
  type AttemptRecord,
  PeerkvAbortError,
  PeerkvArgumentError,
  PeerkvBadAnswerError,
  PeerkvClientError,
  PeerkvTimeoutError,
  PeerkvUnavailableError,
  responseError,
} from './errors.ts';
import { backoffDelayMs, isRetryableStatus, nodeOrder, retryAfterMs } from './failover.ts';
import { type Answer, type Exchange, Transport } from './transport.ts';
import type {
  BatchOp,
  BatchResult,
  ClusterOverview,
  ClusterStatus,
  DeleteResult,
  Entry,
  JsonValue,
  ListOptions,
  ListPage,
  MemberChange,
  MemberList,
  PutResult,
} from './types.ts';

export interface ClientOptions {
  /** Base URLs of the nodes, e.g. `http://127.0.0.1:8001`; tried in this order. */
  readonly nodes: readonly string[];
  /** Sent as `Authorization: Bearer <token>` on every request. */
  readonly token?: string;
  /** PEM of the CA to trust for `https://` nodes (instead of the system CAs). */
  readonly ca?: string | Uint8Array;
  /** Overall deadline of one call, failover included (default 10,000 ms). */
  readonly timeoutMs?: number;
  /** Deadline of one attempt on one node (default: the smaller of 3,000 ms and timeoutMs). */
  readonly attemptTimeoutMs?: number;
  /** Attempts of one call across all nodes (default: twice the nodes, at least 4). */
  readonly attemptsMax?: number;
  /** Backoff before a retry: doubles from min (default 50 ms) up to max (default 1,000 ms), with jitter. */
  readonly backoffMsMin?: number;
  readonly backoffMsMax?: number;
  /** Largest answer read, in bytes (default 64 MiB). */
  readonly responseBytesMax?: number;
  /** Random source in [0, 1) for the jitter (default Math.random); for tests. */
  readonly random?: () => number;
}

export interface CallOptions {
  readonly signal?: AbortSignal;
}

const TIMEOUT_MS_DEFAULT = 10_000;
const ATTEMPT_TIMEOUT_MS_DEFAULT = 3_000;
const ATTEMPTS_MIN = 4;
const ATTEMPTS_CAP = 100;
const BACKOFF_MS_MIN_DEFAULT = 50;
const BACKOFF_MS_MAX_DEFAULT = 1_000;
const RESPONSE_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
const USER_AGENT = 'peerkv-client/0.1';

type Settings = Required<Omit<ClientOptions, 'token' | 'ca' | 'nodes'>>;

export class PeerkvClient {
  readonly nodes: readonly string[];
  readonly #settings: Settings;
  readonly #transport: Transport;
  readonly #connection: BackupConnection;
  /** Index of the node that answered last: the next call starts there. */
  #preferred = 0;
  #closed = false;

  constructor(options: ClientOptions) {
    this.nodes = validateNodes(options.nodes);
    const timeoutMs = positive(options.timeoutMs, 'timeoutMs', TIMEOUT_MS_DEFAULT);
    this.#settings = {
      timeoutMs,
      attemptTimeoutMs: positive(
        options.attemptTimeoutMs,
        'attemptTimeoutMs',
        Math.min(ATTEMPT_TIMEOUT_MS_DEFAULT, timeoutMs),
      ),
      attemptsMax: Math.min(
        ATTEMPTS_CAP,
        positive(options.attemptsMax, 'attemptsMax', Math.max(ATTEMPTS_MIN, 2 * this.nodes.length)),
      ),
      backoffMsMin: positive(options.backoffMsMin, 'backoffMsMin', BACKOFF_MS_MIN_DEFAULT),
      backoffMsMax: positive(options.backoffMsMax, 'backoffMsMax', BACKOFF_MS_MAX_DEFAULT),
      responseBytesMax: positive(
        options.responseBytesMax,
        'responseBytesMax',
        RESPONSE_BYTES_MAX_DEFAULT,
      ),
      random: options.random ?? Math.random,
    };
    if (options.token !== undefined && !/^[\x21-\x7e]+$/.test(options.token)) {
      throw new PeerkvArgumentError('token must be printable ASCII without spaces');
    }
    this.#transport = new Transport({
      token: options.token,
      ca: options.ca,
      responseBytesMax: this.#settings.responseBytesMax,
      userAgent: USER_AGENT,
    });
    this.#connection = { token: options.token, ca: options.ca, userAgent: USER_AGENT };
  }

  /** The entry, or undefined when the key does not exist (or was deleted). */
  async get<T extends JsonValue = JsonValue>(
    key: string,
    options: CallOptions = {},
  ): Promise<Entry<T> | undefined> {
    const path = `/kv/${encodeKey(key)}`;
    const answer = await this.#call({ method: 'GET', path }, options, true);
    if (answer === undefined) return undefined;
    return expectEntry(answer.json) as Entry<T>;
  }

  async put(key: string, value: JsonValue, options: CallOptions = {}): Promise<PutResult> {
    const path = `/kv/${encodeKey(key)}`;
    if (value === undefined) throw new PeerkvArgumentError('value must not be undefined');
    const body = JSON.stringify(value);
    const answer = await this.#call({ method: 'PUT', path, body }, options);
    return expectShape<PutResult>(answer!.json, ['key', 'version']);
  }

  async delete(key: string, options: CallOptions = {}): Promise<DeleteResult> {
    const path = `/kv/${encodeKey(key)}`;
    const answer = await this.#call({ method: 'DELETE', path }, options);
    return expectShape<DeleteResult>(answer!.json, ['key', 'version', 'existed']);
  }

  /**
   * `POST /batch`: puts and deletes applied all or none in one transaction
   * (at most 1,000 ops, each key once). Needs a node that has the route; an
   * older one answers 404 NOT_FOUND. A batch whose answer was lost may be
   * retried on another node: without conditions that writes the same values
   * again; with conditions the retry can fail 412 although the first applied.
   */
  async batch(ops: readonly BatchOp[], options: CallOptions = {}): Promise<BatchResult> {
    if (!Array.isArray(ops) || ops.length === 0) {
      throw new PeerkvArgumentError('a batch needs at least one op');
    }
    for (const op of ops) encodeKey(op.key);
    const body = JSON.stringify({ ops });
    const answer = await this.#call({ method: 'POST', path: '/batch', body }, options);
    return expectShape<BatchResult>(answer!.json, ['ops']);
  }

  /** One page of live entries in key order. */
  async list(query: ListOptions = {}, options: CallOptions = {}): Promise<ListPage> {
    const params = new URLSearchParams();
    if (query.prefix !== undefined) params.set('prefix', query.prefix);
    if (query.after !== undefined) params.set('after', query.after);
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    const search = params.size > 0 ? `?${params}` : '';
    const answer = await this.#call({ method: 'GET', path: `/kv${search}` }, options);
    const page = expectShape<ListPage>(answer!.json, ['items', 'next']);
    if (!Array.isArray(page.items)) throw new PeerkvBadAnswerError('listing without items');
    return { items: page.items.map(expectEntry), next: page.next };
  }

  /** Every live entry under `prefix`, page by page (each page is one call with its own deadline). */
  async *entries(
    query: Omit<ListOptions, 'after'> = {},
    options: CallOptions = {},
  ): AsyncGenerator<Entry, void, undefined> {
    let after: string | undefined;
    for (;;) {
      const page = await this.list({ ...query, after }, options);
      yield* page.items;
      if (page.next === null || page.items.length === 0) return;
      after = page.next;
    }
  }

  /** `GET /cluster` of the first node that answers: its view of itself and its peers. */
  async cluster(options: CallOptions = {}): Promise<ClusterStatus> {
    const answer = await this.#call({ method: 'GET', path: '/cluster' }, options);
    return expectShape<ClusterStatus>(answer!.json, ['node', 'peers']);
  }

  /** `GET /cluster/nodes`: every node of the cluster with its keys, hash, lag and last resync. */
  async overview(options: CallOptions = {}): Promise<ClusterOverview> {
    const answer = await this.#call({ method: 'GET', path: '/cluster/nodes' }, options);
    return expectShape<ClusterOverview>(answer!.json, ['nodes', 'healthy', 'hashesAgree']);
  }

  /** `GET /cluster/members`: the member list as the node keeps it (needs `admin`). */
  async members(options: CallOptions = {}): Promise<MemberList> {
    const answer = await this.#call({ method: 'GET', path: '/cluster/members' }, options);
    return expectShape<MemberList>(answer!.json, ['self', 'members']);
  }

  /** `POST /cluster/members`: makes `url` a member; every member learns it (needs `admin`). */
  async addMember(url: string, options: CallOptions = {}): Promise<MemberChange> {
    const body = JSON.stringify({ url });
    const answer = await this.#call({ method: 'POST', path: '/cluster/members', body }, options);
    return expectShape<MemberChange>(answer!.json, ['url', 'members']);
  }

  /** `DELETE /cluster/members/ID`: removes the member with that node id or URL (needs `admin`). */
  async removeMember(id: string, options: CallOptions = {}): Promise<MemberChange> {
    const path = `/cluster/members/${encodeURIComponent(id)}`;
    const answer = await this.#call({ method: 'DELETE', path }, options);
    return expectShape<MemberChange>(answer!.json, ['removed', 'members']);
  }

  /**
   * `GET /backup` (admin): a consistent copy of one node's SQLite database,
   * written to `destination` as it arrives. The nodes are tried in turn until
   * one starts sending; a copy cut short throws CLIENT_BACKUP_INCOMPLETE.
   */
  async backup(
    destination: NodeJS.WritableStream,
    options: BackupOptions = {},
  ): Promise<BackupResult> {
    if (this.#closed) throw new PeerkvClientError('CLIENT_CLOSED', 'the client is closed');
    const { index, result } = await downloadBackup(
      this.#connection,
      this.nodes,
      this.#preferred,
      destination,
      options,
    );
    this.#preferred = index;
    return result;
  }

  /** Closes the connections; later calls fail with CLIENT_CLOSED. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#transport.close();
  }

  /** Runs one call with failover; undefined only for a 404 KEY_NOT_FOUND when `notFoundOk`. */
  async #call(
    exchange: Exchange,
    options: CallOptions,
    notFoundOk = false,
  ): Promise<Answer | undefined> {
    if (this.#closed) throw new PeerkvClientError('CLIENT_CLOSED', 'the client is closed');
    const userSignal = options.signal;
    if (userSignal?.aborted) throw new PeerkvAbortError(userSignal.reason);
    const { timeoutMs, attemptsMax } = this.#settings;
    const deadline = AbortSignal.timeout(timeoutMs);
    const callSignal = userSignal ? AbortSignal.any([userSignal, deadline]) : deadline;
    const attempts: AttemptRecord[] = [];
    const order = nodeOrder(this.nodes.length, this.#preferred);
    let hintMs = 0;
    for (let attempt = 0; attempt < attemptsMax; attempt += 1) {
      if (attempt > 0) await this.#backoff(attempt, hintMs, callSignal);
      this.#throwIfStopped(userSignal, deadline, attempts);
      const index = order[attempt % order.length]!;
      const outcome = await this.#attempt(index, exchange, callSignal, attempts);
      if (outcome.kind === 'retry') {
        this.#throwIfStopped(userSignal, deadline, attempts);
        hintMs = outcome.retryAfterMs;
        continue;
      }
      this.#preferred = index;
      const { answer } = outcome;
      if (answer.status >= 200 && answer.status < 300) return answer;
      const error = responseError(this.nodes[index]!, answer, attempts);
      if (notFoundOk && answer.status === 404 && error.code === 'KEY_NOT_FOUND') return undefined;
      throw error;
    }
    const last = attempts.at(-1);
    throw new PeerkvUnavailableError(
      `no node could serve the call after ${attempts.length} attempts (last: ${last?.node} ${last?.error})`,
      { attempts },
    );
  }

  async #attempt(
    index: number,
    exchange: Exchange,
    callSignal: AbortSignal,
    attempts: AttemptRecord[],
  ): Promise<{ kind: 'retry'; retryAfterMs: number } | { kind: 'answer'; answer: Answer }> {
    const node = this.nodes[index]!;
    const { attemptTimeoutMs } = this.#settings;
    const signal = AbortSignal.any([callSignal, AbortSignal.timeout(attemptTimeoutMs)]);
    try {
      const answer = await this.#transport.send(node, exchange, signal, attemptTimeoutMs);
      if (!isRetryableStatus(answer.status)) return { kind: 'answer', answer };
      const failure = responseError(node, answer, []);
      attempts.push({ node, error: failure.message, code: failure.code, status: answer.status });
      return { kind: 'retry', retryAfterMs: retryAfterMs(answer.headers['retry-after']) };
    } catch (error) {
      if (error instanceof PeerkvBadAnswerError && !signal.aborted) throw error;
      const code = signal.aborted ? 'CLIENT_ATTEMPT_TIMEOUT' : errorCode(error);
      attempts.push({ node, error: describe(error, signal, attemptTimeoutMs), code });
      return { kind: 'retry', retryAfterMs: 0 };
    }
  }

  async #backoff(retry: number, hintMs: number, signal: AbortSignal): Promise<void> {
    const delayMs = backoffDelayMs(retry, this.#settings.random, this.#settings, hintMs);
    if (delayMs <= 0) return;
    try {
      await sleep(delayMs, undefined, { signal });
    } catch {
      // Aborted or past the deadline: the caller's next check says which.
    }
  }

  #throwIfStopped(
    userSignal: AbortSignal | undefined,
    deadline: AbortSignal,
    attempts: AttemptRecord[],
  ): void {
    if (userSignal?.aborted) throw new PeerkvAbortError(userSignal.reason, { attempts });
    if (deadline.aborted) throw new PeerkvTimeoutError(this.#settings.timeoutMs, { attempts });
  }
}

export function createClient(options: ClientOptions): PeerkvClient {
  return new PeerkvClient(options);
}

function validateNodes(nodes: readonly string[] | undefined): string[] {
  if (!Array.isArray(nodes) || nodes.length === 0) {
    throw new PeerkvArgumentError('nodes must list at least one base URL');
  }
  return nodes.map((node: unknown) => {
    let url: URL;
    try {
      url = new URL(String(node));
    } catch {
      throw new PeerkvArgumentError(`node "${String(node)}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new PeerkvArgumentError(`node "${String(node)}" must be an http:// or https:// URL`);
    }
    return url.origin;
  });
}

function positive(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new PeerkvArgumentError(`${name} must be a positive number, got ${value}`);
  }
  return value;
}

function encodeKey(key: string): string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new PeerkvArgumentError('key must be a non-empty string');
  }
  if (!key.isWellFormed()) throw new PeerkvArgumentError('key is not valid Unicode');
  return encodeURIComponent(key);
}

function expectShape<T>(json: unknown, fields: readonly string[]): T {
  if (typeof json !== 'object' || json === null || fields.some((field) => !(field in json))) {
    throw new PeerkvBadAnswerError(`answer lacks ${fields.join(', ')}`);
  }
  return json as T;
}

function expectEntry(json: unknown): Entry {
  const entry = expectShape<Entry>(json, ['key', 'value', 'version']);
  if (typeof entry.key !== 'string' || typeof entry.version !== 'string') {
    throw new PeerkvBadAnswerError('entry without a string key and version');
  }
  return entry;
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'CLIENT_NETWORK';
}

function describe(error: unknown, signal: AbortSignal, timeoutMs: number): string {
  if (signal.aborted) return `no answer within ${timeoutMs} ms`;
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  return code === 'CLIENT_NETWORK' ? message : `${code}: ${message}`;
}
