/**
 * The "ceiling": a bare polka server doing the least an HTTP JSON API can do.
 * peerkv is measured against it on the same machine, with the same client, in
 * the same run. It runs as its own process (like a peerkv node), so it never
 * shares an event loop with the load generator.
 *
 *   node --import tsx bench/lib/ceiling-server.ts --port 4100
 *
 * GET /ping  -> {"message":"pong"}
 * POST /echo -> reads the JSON body fully, parses it, answers {"ok":true}
 *
 * The body-parsing ceiling (issue 14): peerkv's own routes with only the work
 * every JSON front end must do, on the very bodies peerkv's cases send:
 * POST /store     -> reads and parses `{"key","value"}`, answers `{"key","version"}`
 * GET /store/key  -> reads and parses `{"key"}`, answers `{"value"}` (a value of
 *                    the preloaded size), 400 without a string key
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import minimist from 'minimist';
import polka from 'polka';
import { benchLimits } from './limits.ts';

const host = '127.0.0.1';
const pongBody = JSON.stringify({ message: 'pong' });
const okBody = JSON.stringify({ ok: true });
/** A version as peerkv writes one (14 hex digits, a dash, a 16-hex node id). */
const fixedVersion = '0688986c81a000-3f2a9c1d7e5b4a60';
/** peerkv's read answer for a preloaded key (bench/lib/peerkv.ts: 100-byte values). */
const valueBody = JSON.stringify({ value: 'x'.repeat(100) });
/** How often the orphan guard checks that the parent is still alive. */
const parentCheckIntervalMs = 1_000;

function parsePort(argv: string[]): number {
  const args = minimist(argv, { string: ['port'] });
  const port = Number(args.port);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new Error(`ceiling-server: --port must be an integer in 1..65535, got ${args.port}`);
  }
  return port;
}

function sendJson(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

function handlePing(_req: IncomingMessage, res: ServerResponse): void {
  sendJson(res, 200, pongBody);
}

/** Reads the whole body (bounded), parses it as JSON, answers with `answer(parsed)`. */
function parsingHandler(answer: (parsed: unknown) => string | undefined) {
  return (req: IncomingMessage, res: ServerResponse) => readAndAnswer(req, res, answer);
}

function keyOf(parsed: unknown): string | undefined {
  const key = (parsed as { key?: unknown } | null)?.key;
  return typeof key === 'string' ? key : undefined;
}

const handleEcho = parsingHandler(() => okBody);
const handleStore = parsingHandler((parsed) => {
  const key = keyOf(parsed);
  return key === undefined ? undefined : JSON.stringify({ key, version: fixedVersion });
});
const handleStoreKey = parsingHandler((parsed) =>
  keyOf(parsed) === undefined ? undefined : valueBody,
);

function readAndAnswer(
  req: IncomingMessage,
  res: ServerResponse,
  answer: (parsed: unknown) => string | undefined,
): void {
  const chunks: Buffer[] = [];
  let bodyBytes = 0;
  let rejected = false;
  req.on('data', (chunk: Buffer) => {
    if (rejected) return;
    bodyBytes += chunk.length;
    if (bodyBytes > benchLimits.echoBodyBytesMax) {
      rejected = true;
      sendJson(res, 413, JSON.stringify({ error: 'body too large', code: 'BODY_TOO_LARGE' }));
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (rejected) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.concat(chunks, bodyBytes).toString('utf8'));
    } catch {
      // The only failure JSON.parse has is bad input: answer it like peerkv would.
      sendJson(res, 400, JSON.stringify({ error: 'body is not JSON', code: 'BAD_JSON' }));
      return;
    }
    const body = answer(parsed);
    if (body === undefined) {
      sendJson(res, 400, JSON.stringify({ error: 'key must be a string', code: 'BAD_KEY' }));
      return;
    }
    sendJson(res, 200, body);
  });
  req.on('error', (err) => {
    console.error('ceiling-server: request stream failed', err);
    res.destroy();
  });
}

/** Exit when the parent dies without stopping us (e.g. it was SIGKILLed). */
function guardAgainstOrphaning(): void {
  const parentPid = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parentPid) {
      console.error('ceiling-server: parent is gone, exiting');
      process.exit(1);
    }
  }, parentCheckIntervalMs);
  timer.unref();
}

function main(): void {
  const port = parsePort(process.argv.slice(2));
  const app = polka();
  app.get('/ping', handlePing);
  app.post('/echo', handleEcho);
  app.post('/store', handleStore);
  app.get('/store/key', handleStoreKey);
  app.listen(port, host, () => {
    console.log(`ceiling-server listening on http://${host}:${port}`);
  });
  const server = app.server;
  if (server === undefined) throw new Error('ceiling-server: polka did not create a server');
  server.on('error', (err) => {
    console.error('ceiling-server: listen failed', err);
    process.exit(1);
  });
  const shutdown = (): void => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  guardAgainstOrphaning();
}

main();
