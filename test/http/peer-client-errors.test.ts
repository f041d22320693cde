// Errors from peers carry stable codes (PEER_TIMEOUT, PEER_UNREACHABLE, PEER_STATUS,
// PEER_BAD_ANSWER), so callers decide on a code, not on a message: the real PeerClient (undici)
// against a node:http server on port 0 that answers well, badly, with an error, or not at all.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { PeerClient } from '../../src/replication/peer-client.ts';
import { PeerCallError, type PeerErrorCode } from '../../src/replication/peer-transport.ts';

const TIMEOUT_MS = 300;

describe('peer call errors', () => {
  let server: Server;
  let client: PeerClient;
  const hung: { destroy(): void }[] = [];

  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/ok') res.end('{"fine":true}');
      else if (req.url === '/not-json') res.end('<html>');
      else if (req.url === '/fails') {
        res.statusCode = 500;
        res.end('{"error":"boom"}');
      } else if (req.url === '/ping') {
        res.setHeader('x-peerkv-time-ms', '1');
        res.end('no node id header');
      } else hung.push(res.socket!); // /hang: never answers
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    client = new PeerClient(`http://127.0.0.1:${port}`, {
      timeoutMs: TIMEOUT_MS,
      valueBytesMax: 1024,
      connections: 2,
      authorization: () => undefined,
    });
  });
  after(async () => {
    for (const socket of hung) socket.destroy();
    await client.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  async function codeOf(call: Promise<unknown>): Promise<{ code: PeerErrorCode; status?: number }> {
    const error = await call.then(
      () => assert.fail('the call should have failed'),
      (failure: unknown) => failure,
    );
    assert.ok(error instanceof PeerCallError, `a PeerCallError, got ${String(error)}`);
    return { code: error.code, ...(error.status === undefined ? {} : { status: error.status }) };
  }

  test('a 2xx JSON answer resolves', async () => {
    assert.deepEqual((await client.call('GET', '/ok')).json, { fine: true });
  });

  test('a non-2xx answer is PEER_STATUS with the status', async () => {
    assert.deepEqual(await codeOf(client.call('GET', '/fails')), {
      code: 'PEER_STATUS',
      status: 500,
    });
  });

  test('an answer that is not JSON, or a ping without a node id, is PEER_BAD_ANSWER', async () => {
    assert.deepEqual(await codeOf(client.call('GET', '/not-json')), { code: 'PEER_BAD_ANSWER' });
    assert.deepEqual(await codeOf(client.ping(Date.now)), { code: 'PEER_BAD_ANSWER' });
  });

  test('no answer within the timeout is PEER_TIMEOUT', async () => {
    assert.deepEqual(await codeOf(client.call('GET', '/hang')), { code: 'PEER_TIMEOUT' });
  });

  test('a port nobody listens on is PEER_UNREACHABLE', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const nobody = new PeerClient(`http://127.0.0.1:${port}`, {
      timeoutMs: TIMEOUT_MS,
      valueBytesMax: 1024,
      connections: 1,
      authorization: () => undefined,
    });
    try {
      assert.deepEqual(await codeOf(nobody.call('GET', '/ok')), { code: 'PEER_UNREACHABLE' });
    } finally {
      await nobody.close();
    }
  });
});
