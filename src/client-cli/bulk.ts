/**
 * `peerkv load` and `peerkv dump`: entries in and out as JSON lines. Load
 * keeps a bounded number of writes in flight; a file is checked whole
 * before the first write. Dump pages through the key space and respects
 * the output stream's backpressure.
 */
import { once } from 'node:events';
import { accessSync, constants, createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { PeerkvClient } from '../client/client.ts';
import { PeerkvResponseError } from '../client/errors.ts';
import type { JsonValue } from '../client/types.ts';
import { ConfigError } from '../errors.ts';
import { createProgress } from './progress.ts';

export interface BulkIo {
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WriteStream;
}

/** Requests in flight at once (batches, or single puts on a node without POST /batch). */
const CONCURRENCY_DEFAULT = 4;
/** One POST /batch: ops and bytes (the node takes 1,000 ops and 8 MiB). */
const BATCH_OPS_MAX = 500;
const BATCH_BYTES_MAX = 4 * 1024 * 1024;
const DUMP_PAGE = 1_000;
/** A line longer than this cannot be an entry the node would take (1 MiB value + key). */
const LINE_CHARS_MAX = 4 * 1024 * 1024;

interface Line {
  readonly key: string;
  readonly value: JsonValue;
}

/** Reads JSON lines; throws a ConfigError naming the first bad line. */
async function* readLines(input: NodeJS.ReadableStream, source: string): AsyncGenerator<Line> {
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let number = 0;
  for await (const text of lines) {
    number += 1;
    if (text.trim() === '') continue;
    yield parseLine(text, `${source}:${number}`);
  }
}

function parseLine(text: string, where: string): Line {
  if (text.length > LINE_CHARS_MAX) throw new ConfigError(`${where}: line too long`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(`${where}: not JSON`);
  }
  const line = parsed as { key?: unknown; value?: unknown } | null;
  if (typeof line !== 'object' || line === null || Array.isArray(line)) {
    throw new ConfigError(`${where}: expected an object {"key": ..., "value": ...}`);
  }
  if (typeof line.key !== 'string' || line.key === '') {
    throw new ConfigError(`${where}: "key" must be a non-empty string`);
  }
  if (line.value === undefined) throw new ConfigError(`${where}: "value" is missing`);
  return { key: line.key, value: line.value as JsonValue };
}

export async function load(
  client: PeerkvClient,
  file: string,
  concurrency: number | undefined,
  io: BulkIo,
): Promise<{ written: number; mode: 'batch' | 'single' }> {
  const fromStdin = file === '-';
  const total = fromStdin ? undefined : await countLines(file);
  const progress = createProgress(io.stderr, 'load', total);
  const loader = new Loader(client, concurrency ?? CONCURRENCY_DEFAULT, (count) =>
    progress.advance(count),
  );
  try {
    for await (const line of readLines(fromStdin ? io.stdin : openFile(file), file)) {
      await loader.add(line);
    }
  } finally {
    await loader.finish();
    progress.done();
  }
  return { written: loader.written, mode: loader.mode === 'single' ? 'single' : 'batch' };
}

/**
 * Groups lines into `POST /batch` calls (or single puts, on a node without
 * the route) with at most `windowMax` in flight. A key met again waits until
 * every earlier write of it is done, so the file's last line for a key wins.
 */
class Loader {
  written = 0;
  mode: 'unknown' | 'batch' | 'single' = 'unknown';
  readonly #client: PeerkvClient;
  readonly #windowMax: number;
  readonly #onWritten: (count: number) => void;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #inFlightKeys = new Set<string>();
  #batch: Line[] = [];
  #batchKeys = new Set<string>();
  #batchBytes = 0;
  #failure: { error: unknown } | undefined;

  constructor(client: PeerkvClient, windowMax: number, onWritten: (count: number) => void) {
    this.#client = client;
    this.#windowMax = windowMax;
    this.#onWritten = onWritten;
  }

  async add(line: Line): Promise<void> {
    if (this.#failure) throw this.#failure.error;
    if (this.#batchKeys.has(line.key)) await this.#flush();
    if (this.#inFlightKeys.has(line.key)) await this.#drain();
    const bytes = Buffer.byteLength(line.key) + JSON.stringify(line.value).length;
    if (this.#batch.length > 0 && this.#batchBytes + bytes > BATCH_BYTES_MAX) await this.#flush();
    this.#batch.push(line);
    this.#batchKeys.add(line.key);
    this.#batchBytes += bytes;
    const opsMax = this.mode === 'single' ? 1 : BATCH_OPS_MAX;
    if (this.#batch.length >= opsMax) await this.#flush();
  }

  async finish(): Promise<void> {
    if (!this.#failure) await this.#flush();
    await this.#drain();
    if (this.#failure) throw this.#failure.error;
  }

  async #flush(): Promise<void> {
    const lines = this.#batch;
    if (lines.length === 0) return;
    this.#batch = [];
    this.#batchKeys = new Set();
    this.#batchBytes = 0;
    if (this.mode === 'unknown') {
      // The first batch alone tells whether the node has POST /batch.
      await this.#track(lines, this.#sendFirst(lines));
      return;
    }
    while (this.#inFlight.size >= this.#windowMax) await Promise.race(this.#inFlight);
    void this.#track(lines, this.#send(lines));
  }

  #track(lines: readonly Line[], sending: Promise<void>): Promise<void> {
    for (const line of lines) this.#inFlightKeys.add(line.key);
    const tracked: Promise<void> = sending
      .then(
        () => {
          this.written += lines.length;
          this.#onWritten(lines.length);
        },
        (error: unknown) => {
          this.#failure ??= { error };
        },
      )
      .finally(() => {
        this.#inFlight.delete(tracked);
        for (const line of lines) this.#inFlightKeys.delete(line.key);
      });
    this.#inFlight.add(tracked);
    return tracked;
  }

  async #sendFirst(lines: readonly Line[]): Promise<void> {
    try {
      await this.#sendBatch(lines);
      this.mode = 'batch';
    } catch (error) {
      if (!(error instanceof PeerkvResponseError && error.code === 'NOT_FOUND')) throw error;
      this.mode = 'single';
      for (const line of lines) await this.#client.put(line.key, line.value);
    }
  }

  async #send(lines: readonly Line[]): Promise<void> {
    if (this.mode === 'batch') await this.#sendBatch(lines);
    else for (const line of lines) await this.#client.put(line.key, line.value);
  }

  async #sendBatch(lines: readonly Line[]): Promise<void> {
    await this.#client.batch(
      lines.map((line) => ({ op: 'put', key: line.key, value: line.value })),
    );
  }

  async #drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.race(this.#inFlight);
  }
}

/** Checks every line of the file (the first bad one throws) and counts the entries. */
async function countLines(file: string): Promise<number> {
  let count = 0;
  for await (const line of readLines(openFile(file), file)) if (line) count += 1;
  return count;
}

function openFile(file: string): NodeJS.ReadableStream {
  try {
    accessSync(file, constants.R_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(`cannot read ${file} (${code})`);
  }
  return createReadStream(file, { encoding: 'utf8' });
}

export async function dump(
  client: PeerkvClient,
  prefix: string | undefined,
  io: BulkIo,
): Promise<{ written: number }> {
  const progress = createProgress(io.stderr, 'dump', undefined);
  let written = 0;
  try {
    for await (const entry of client.entries({ prefix, limit: DUMP_PAGE })) {
      const line = `${JSON.stringify({ key: entry.key, value: entry.value, version: entry.version })}\n`;
      if (!io.stdout.write(line)) await once(io.stdout, 'drain');
      written += 1;
      progress.advance(1);
    }
  } finally {
    progress.done();
  }
  return { written };
}
