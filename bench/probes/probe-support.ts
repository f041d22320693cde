/** What the one-off probes under bench/probes/ share. */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';

/** The source node id of the probes' bulk loads (`POST /replicate` bodies). */
const BULK_NODE = '00000000000000b0';

/** A loopback port free right now (the kernel picks it; the probe binds it next). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

/**
 * A `POST /replicate` body of keys k<first> .. k<first+count-1>, 100-byte
 * values, versions from `baseTimestamp` up: what the bench's bulk load sends.
 */
export function bulkBody(first: number, count: number, baseTimestamp: number): string {
  const value = JSON.stringify('x'.repeat(100));
  const entries: string[] = [];
  for (let index = first; index < first + count; index += 1) {
    const version = `${(baseTimestamp + index).toString(16).padStart(14, '0')}-${BULK_NODE}`;
    entries.push(`{"key":"k${index}","value":${value},"version":"${version}"}`);
  }
  return `{"from":"${BULK_NODE}","entries":[${entries.join(',')}]}`;
}

/**
 * The probes' bulk load: keys k0 .. k<keys-1> in bulkBody batches of `batch` keys, versions from
 * an hour ago, `inFlight` batches at a time, each handed to `send` with its key count.
 */
export async function bulkLoad(
  keys: number,
  send: (body: string, count: number) => Promise<void>,
  { batch = 5_000, inFlight = 2 }: { batch?: number; inFlight?: number } = {},
): Promise<void> {
  const baseTimestamp = (Date.now() - 3_600_000) * 1024;
  let next = 0;
  const loader = async () => {
    for (let first = next; first < keys; first = next) {
      next += batch;
      const count = Math.min(batch, keys - first);
      await send(bulkBody(first, count, baseTimestamp), count);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, loader));
}

const CALL_TIMEOUT_MS = 120_000;

/** One request to a node (a JSON body when given); its answer's text, which must be a 200. */
export async function call(url: string, method: 'GET' | 'POST', body?: string): Promise<string> {
  const answer = await request(url, {
    method,
    body,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    headersTimeout: CALL_TIMEOUT_MS,
    bodyTimeout: CALL_TIMEOUT_MS,
  });
  const text = await answer.body.text();
  assert.equal(answer.statusCode, 200, text);
  return text;
}

/** SIGTERM, and the exit awaited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((done) => child.once('exit', done));
  child.kill('SIGTERM');
  await exited;
}

/** Resolves once `GET <url><path>` answers 200; throws after 30 s. */
export async function listening(url: string, path: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      const answer = await request(`${url}${path}`);
      await answer.body.dump();
      if (answer.statusCode === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(20);
  }
  throw new Error(`${url} not up after 30 s`);
}
