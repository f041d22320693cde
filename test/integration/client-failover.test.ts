// Checks the client library's failover on real node processes: a 4xx answer is final (no other
// node sees the request), a hung node is skipped within the call's deadline, an all-hung cluster
// gives a typed timeout near the deadline, aborts stop a call at once, a 503 moves to the next
// node, and a kill -9 of the first node is survived. Fault proxies sit between client and nodes.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import {
  createClient,
  PeerkvAbortError,
  type PeerkvClient,
  PeerkvResponseError,
  PeerkvTimeoutError,
} from '../../src/client/index.ts';
import { FaultProxy } from '../helpers/fault-proxy.ts';
import { type Cluster, useCluster, waitFor } from '../helpers/node-process.ts';

const CONVERGE_TIMEOUT_MS = 10_000;
/** Slack for a loaded 2-core machine on top of a deadline. */
const LATE_MS_MAX = 1_500;

let cluster: Cluster;
useCluster({ nodes: 2 }, (started) => {
  cluster = started;
});

const proxies: FaultProxy[] = [];
const clients: PeerkvClient[] = [];

async function startProxies(): Promise<void> {
  for (const port of cluster.ports) {
    const proxy = new FaultProxy({ targetPort: port });
    await proxy.start();
    proxies.push(proxy);
  }
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  for (const proxy of proxies) proxy.heal();
});

after(async () => {
  await Promise.all(proxies.map((proxy) => proxy.close()));
});

function client(
  nodes: readonly string[],
  options: { timeoutMs?: number; attemptTimeoutMs?: number } = {},
) {
  const made = createClient({ nodes, backoffMsMin: 10, backoffMsMax: 100, ...options });
  clients.push(made);
  return made;
}

const viaProxies = () => proxies.map((proxy) => proxy.url);

async function rejectsWithin<T extends Error>(
  promise: Promise<unknown>,
  type: new (...args: never[]) => T,
  msMax: number,
): Promise<{ error: T; elapsedMs: number }> {
  const started = performance.now();
  const error = await promise.then(
    () => assert.fail(`expected ${type.name}`),
    (caught: unknown) => caught,
  );
  const elapsedMs = performance.now() - started;
  assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`);
  assert.ok(elapsedMs <= msMax, `took ${Math.round(elapsedMs)} ms, at most ${msMax} allowed`);
  return { error, elapsedMs };
}

describe('answers and failover', () => {
  before(startProxies);

  test('a 400 is final: typed with the node code, and no other node sees the request', async () => {
    const before = proxies[1]!.stats().bytesToTarget;
    const { error } = await rejectsWithin(
      client(viaProxies()).put('k'.repeat(2_000), 'v'),
      PeerkvResponseError,
      5_000,
    );
    assert.equal(error.code, 'KEY_TOO_LARGE');
    assert.equal(error.status, 400);
    assert.equal(error.node, proxies[0]!.url);
    assert.deepEqual(error.attempts, []);
    assert.equal(proxies[1]!.stats().bytesToTarget, before, 'the second node got nothing');
  });

  test('a hung first node is skipped after the attempt timeout', async () => {
    proxies[0]!.blackhole();
    const kv = client(viaProxies(), { timeoutMs: 5_000, attemptTimeoutMs: 300 });
    const started = performance.now();
    const put = await kv.put('failover/hung', { n: 1 });
    assert.ok(performance.now() - started < 300 + LATE_MS_MAX, 'well inside the deadline');
    const entry = await kv.get('failover/hung');
    assert.deepEqual(entry, { key: 'failover/hung', value: { n: 1 }, version: put.version });
  });

  test('every node hung: a typed timeout at the overall deadline', async () => {
    for (const proxy of proxies) proxy.blackhole();
    const kv = client(viaProxies(), { timeoutMs: 700, attemptTimeoutMs: 200 });
    const { error, elapsedMs } = await rejectsWithin(
      kv.get('anything'),
      PeerkvTimeoutError,
      700 + LATE_MS_MAX,
    );
    assert.ok(elapsedMs >= 650, `not before the deadline (${Math.round(elapsedMs)} ms)`);
    assert.equal(error.code, 'CLIENT_TIMEOUT');
    assert.ok(error.attempts.length >= 2, 'it tried more than one node');
    assert.ok(error.attempts.every((attempt) => attempt.code === 'CLIENT_ATTEMPT_TIMEOUT'));
  });

  test('an abort stops a hung call at once; an aborted signal sends nothing', async () => {
    for (const proxy of proxies) proxy.blackhole();
    const kv = client(viaProxies(), { timeoutMs: 10_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('user gave up')), 100);
    const { error } = await rejectsWithin(
      kv.get('anything', { signal: controller.signal }),
      PeerkvAbortError,
      100 + LATE_MS_MAX,
    );
    assert.equal(error.code, 'CLIENT_ABORTED');
    assert.equal((error.cause as Error).message, 'user gave up');
    const sent = proxies.map((proxy) => proxy.stats().connectionsAccepted);
    await rejectsWithin(kv.put('x', 1, { signal: AbortSignal.abort() }), PeerkvAbortError, 500);
    assert.deepEqual(
      proxies.map((proxy) => proxy.stats().connectionsAccepted),
      sent,
      'no connection for an already-aborted call',
    );
  });

  test('a 503 moves on to the next node', async () => {
    let refused = 0;
    const overloaded: Server = createServer((_req, res) => {
      refused += 1;
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '0' });
      res.end(JSON.stringify({ error: 'write queue full', code: 'OVERLOADED' }));
    });
    await new Promise<void>((resolve) => overloaded.listen(0, '127.0.0.1', resolve));
    try {
      const port = (overloaded.address() as AddressInfo).port;
      const kv = client([`http://127.0.0.1:${port}`, cluster.urls[1]!]);
      const put = await kv.put('failover/503', 'ok');
      assert.equal(refused, 1);
      assert.equal((await kv.get('failover/503'))?.version, put.version);
    } finally {
      await new Promise<void>((resolve) => overloaded.close(() => resolve()));
    }
  });
});

describe('a killed node', () => {
  test('the overview shows both nodes up with equal hashes', async () => {
    const kv = client(cluster.urls);
    await kv.put('overview/a', 1);
    const overview = await waitFor(
      async () => {
        const seen = await kv.overview();
        const settled = seen.nodes.every((node) => node.entries! >= 1 && node.pendingChanges === 0);
        return seen.healthy && settled && seen;
      },
      { timeoutMs: CONVERGE_TIMEOUT_MS, message: 'a healthy overview' },
    );
    assert.equal(overview.nodes.length, 2);
    assert.equal(overview.hashesAgree, true);
    assert.deepEqual(
      overview.nodes.map((node) => [node.url, node.state, node.self]),
      [
        [cluster.urls[0], 'up', true],
        [cluster.urls[1], 'up', false],
      ],
    );
    assert.equal(new Set(overview.nodes.map((node) => node.hash)).size, 1);
    for (const node of overview.nodes) {
      assert.match(node.nodeId ?? '', /^[0-9a-f]{16}$/);
      assert.equal(node.error, null);
    }
  });

  test('kill -9 of the first node: calls go on through the second', async () => {
    const kv = client(cluster.urls, { timeoutMs: 5_000 });
    await kv.put('killed/before', 'b');
    const second = client([cluster.urls[1]!]);
    await waitFor(async () => (await second.get('killed/before'))?.value === 'b', {
      timeoutMs: CONVERGE_TIMEOUT_MS,
      message: 'the write replicated to the second node',
    });
    cluster.node(0).kill('SIGKILL');
    await cluster.node(0).waitExit();
    const started = performance.now();
    const put = await kv.put('killed/after', 'a');
    assert.ok(performance.now() - started < 5_000);
    assert.equal((await kv.get('killed/after'))?.version, put.version);
    assert.equal((await kv.get('killed/before'))?.value, 'b');
    const overview = await waitFor(
      async () => {
        const seen = await kv.overview();
        return seen.nodes.find((node) => node.url === cluster.urls[0])?.state === 'down' && seen;
      },
      { timeoutMs: CONVERGE_TIMEOUT_MS, message: 'the killed node shown down' },
    );
    assert.equal(overview.healthy, false);
    assert.equal(overview.nodes.find((node) => node.self)?.url, cluster.urls[1]);
  });
});
