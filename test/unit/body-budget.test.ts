// Goal: the node-wide body budget bounds the request-body bytes being read at once; method: the
// real body reader behind a node:http server on port 0 with a 1 MiB budget, one body held half
// sent, then bodies that do not fit are refused (503 before reading when the declared length does
// not fit, 503 while reading when a chunked one passes it), and the budget is whole again after.
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { BodyBudget } from '../../src/http/body-budget.ts';
import { readJson } from '../../src/http/read-body.ts';
import { sendError, sendJson } from '../../src/http/respond.ts';
import { waitFor } from '../helpers/node-process.ts';
import { exchange } from '../integration/hostile-support.ts';

const KiB = 1024;
const budget = new BodyBudget(1024 * KiB);
const server = http.createServer((req, res) => {
  readJson(req, { bytesMax: 1024 * KiB, budget }).then(
    (body) => sendJson(res, 200, { length: JSON.stringify(body).length }),
    (error: unknown) => sendError(res, error, pino({ level: 'silent' })),
  );
});
let port = 0;

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

/** A JSON string body of exactly `bytes` bytes. */
function jsonBody(bytes: number): Buffer {
  return Buffer.from(`"${'a'.repeat(bytes - 2)}"`);
}

function head(length: number | 'chunked'): Buffer {
  const framing = length === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${length}`;
  return Buffer.from(
    `POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${framing}\r\n\r\n`,
  );
}

/** A request sent in two parts: the second only when `rest()` is called; `answer` is all it got. */
function heldRequest(parts: [Buffer, Buffer]): { rest(): void; answer: Promise<string> } {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.write(parts[0]);
  let received = '';
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
  });
  const answer = new Promise<string>((resolve) => socket.once('close', () => resolve(received)));
  socket.on('error', () => socket.destroy());
  return { rest: () => socket.write(parts[1]), answer };
}

test('bodies past the budget get 503 with Retry-After; the budget is whole again after', async () => {
  const held = jsonBody(800 * KiB);
  const first = heldRequest([
    Buffer.concat([head(held.length), held.subarray(0, 700 * KiB)]),
    held.subarray(700 * KiB),
  ]);
  // The first body holds 700 KiB of the budget until its last part is sent.
  await waitFor(() => budget.bytesUsed >= 700 * KiB, { timeoutMs: 5_000, message: 'first held' });

  const declared = await exchange(port, [head(400 * KiB), jsonBody(400 * KiB)], {
    earlyAnswerMs: 200,
  });
  assert.equal(declared.status, 503, declared.text);
  assert.equal(declared.headers['retry-after'], '1');
  assert.equal((declared.json as { code: string }).code, 'OVERLOADED');

  const piece = jsonBody(400 * KiB);
  const chunk = Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece]);
  const chunked = await exchange(port, [head('chunked'), chunk, Buffer.from('\r\n0\r\n\r\n')]);
  assert.equal(chunked.status, 503, chunked.text);
  assert.ok(budget.bytesUsed >= 700 * KiB && budget.bytesUsed <= budget.bytesMax);

  first.rest();
  assert.match(await first.answer, /^HTTP\/1\.1 200 /);
  assert.equal(budget.bytesUsed, 0);
  const fits = await exchange(port, [head(400 * KiB), jsonBody(400 * KiB)]);
  assert.equal(fits.status, 200, fits.text);
  assert.equal(budget.bytesUsed, 0);
});
