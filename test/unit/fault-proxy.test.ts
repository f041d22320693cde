// Checks that FaultProxy forwards, cuts, heals, delays, blackholes and drops connections as fault
// tests expect, by driving it against a local HTTP server and a TCP echo server on port 0.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createRng, FaultProxy } from '../helpers/fault-proxy.ts';
import { getJson, HttpRequestError, postJson, rawRequest, sleep } from '../helpers/http.ts';
import { waitFor } from '../helpers/node-process.ts';

const WAIT_MS = 3_000;
const SEED = Number(process.env.TEST_SEED ?? 1729);

/** A TCP client that keeps everything it receives, for exchanges that span a fault. */
class TcpClient {
  readonly socket: net.Socket;
  received = '';
  errorCode: string | undefined;
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received += chunk.toString('latin1');
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.errorCode = err.code;
    });
    socket.on('close', () => {
      this.closed = true;
    });
  }

  static connect(port: number): Promise<TcpClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      const timer = setTimeout(() => socket.destroy(new Error('connect timed out')), WAIT_MS);
      socket.once('error', reject);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', reject);
        resolve(new TcpClient(socket));
      });
    });
  }

  waitFor(text: string): Promise<unknown> {
    return waitFor(() => this.received.includes(text), {
      timeoutMs: WAIT_MS,
      message: `echo of ${JSON.stringify(text)}`,
    });
  }
}

describe('FaultProxy', () => {
  const proxies: FaultProxy[] = [];
  const clients: TcpClient[] = [];
  let echoCompleted = 0;
  let httpPort = 0;
  let tcpPort = 0;

  const httpServer = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.url === '/echo') echoCompleted += 1;
      const body =
        req.url === '/ping' ? { message: 'pong' } : { echo: Buffer.concat(chunks).toString() };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  });
  const echoServer = net.createServer((socket) => {
    socket.on('error', () => {}); // resets are what these tests provoke
    socket.pipe(socket);
  });

  before(async () => {
    httpPort = await listen(httpServer);
    tcpPort = await listen(echoServer);
  });

  after(async () => {
    for (const client of clients) client.socket.destroy();
    await Promise.all(proxies.map((proxy) => proxy.close()));
    httpServer.closeAllConnections();
    await Promise.all([close(httpServer), close(echoServer)]);
  });

  async function startProxy(targetPort: number, queuedBytesMax?: number): Promise<FaultProxy> {
    const proxy = new FaultProxy({ targetPort, queuedBytesMax });
    proxies.push(proxy);
    await proxy.start();
    return proxy;
  }

  async function connect(port: number): Promise<TcpClient> {
    const client = await TcpClient.connect(port);
    clients.push(client);
    return client;
  }

  it('forwards requests and answers, counting bytes each way', async () => {
    const proxy = await startProxy(httpPort);
    const response = await postJson(`${proxy.url}/echo`, { key: 'hello' }, { timeoutMs: WAIT_MS });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, { echo: '{"key":"hello"}' });
    const stats = proxy.stats();
    assert.equal(stats.connectionsAccepted, 1);
    assert.ok(stats.bytesToTarget > 0 && stats.bytesFromTarget > 0, JSON.stringify(stats));
  });

  it('cut resets open connections and makes new requests fail fast', async () => {
    const proxy = await startProxy(tcpPort);
    const client = await connect(proxy.port);
    client.socket.write('before');
    await client.waitFor('before');
    proxy.cut();
    await waitFor(() => client.closed, { timeoutMs: WAIT_MS, message: 'open connection reset' });
    assert.equal(client.errorCode, 'ECONNRESET');

    const url = `http://127.0.0.1:${proxy.port}/ping`;
    const failure = await getJson(url, { timeoutMs: WAIT_MS }).then(
      () => assert.fail('request through a cut link succeeded'),
      (err: unknown) => err,
    );
    assert.ok(failure instanceof HttpRequestError, String(failure));
    assert.equal(failure.timedOut, false, 'a cut link must fail fast, not time out');
    assert.equal(proxy.stats().connectionsRefused, 1);
  });

  it('heal restores forwarding after a cut', async () => {
    const proxy = await startProxy(httpPort);
    proxy.cut();
    await assert.rejects(getJson(`${proxy.url}/ping`, { timeoutMs: WAIT_MS }), HttpRequestError);
    proxy.heal();
    const response = await getJson(`${proxy.url}/ping`, { timeoutMs: WAIT_MS });
    assert.deepEqual(response.body, { message: 'pong' });
  });

  it('delay holds every chunk back in both directions', async () => {
    const delayMs = 150;
    const proxy = await startProxy(tcpPort);
    const client = await connect(proxy.port);
    proxy.setDelay(delayMs);
    const startedAt = performance.now();
    client.socket.write('slow');
    await client.waitFor('slow');
    const elapsedMs = performance.now() - startedAt;
    // Out and back: two delays. Loose by a few ms, since timers have millisecond granularity.
    assert.ok(elapsedMs >= 2 * delayMs - 5, `round trip took ${elapsedMs} ms`);
    assert.throws(() => proxy.setDelay(-1));
  });

  it('blackhole hangs new requests until the client times out', async () => {
    const proxy = await startProxy(httpPort);
    proxy.blackhole();
    const failure = await getJson(`${proxy.url}/ping`, { timeoutMs: 300 }).then(
      () => assert.fail('request through a blackhole succeeded'),
      (err: unknown) => err,
    );
    assert.ok(failure instanceof HttpRequestError, String(failure));
    assert.equal(failure.timedOut, true);
    assert.equal(proxy.stats().bytesToTarget, 0);
    proxy.heal();
    const response = await getJson(`${proxy.url}/ping`, { timeoutMs: WAIT_MS });
    assert.equal(response.status, 200);
  });

  it('blackhole holds in-flight bytes and delivers them after heal', async () => {
    const proxy = await startProxy(tcpPort);
    const client = await connect(proxy.port);
    proxy.blackhole();
    client.socket.write('held');
    await sleep(200);
    assert.equal(client.received, '', 'nothing passes a blackhole');
    proxy.heal();
    await client.waitFor('held');
  });

  it('bounds what it buffers and still delivers every byte', async () => {
    const proxy = await startProxy(tcpPort, 16 * 1024);
    const client = await connect(proxy.port);
    proxy.blackhole();
    const payload = 'x'.repeat(1024 * 1024 - 3).concat('end');
    client.socket.write(payload);
    await sleep(100);
    const held = proxy.stats();
    assert.equal(held.bytesToTarget, 0);
    // The bound, plus at most one socket read (64 KiB) that arrived as the reader was paused.
    assert.ok(held.bytesQueued <= 16 * 1024 + 64 * 1024, `queued ${held.bytesQueued} bytes`);
    proxy.heal();
    await waitFor(() => client.received.length === payload.length, {
      timeoutMs: WAIT_MS,
      message: 'whole payload echoed',
    });
    assert.equal(client.received, payload);
  });

  it('drops connections mid-request before the server sees a whole request', async () => {
    const proxy = await startProxy(httpPort);
    proxy.setDropMidRequest(1, createRng(SEED));
    const before = echoCompleted;
    await assert.rejects(
      postJson(`${proxy.url}/echo`, { key: 'k', value: 'v'.repeat(1000) }, { timeoutMs: WAIT_MS }),
      (err: unknown) => err instanceof HttpRequestError && !err.timedOut,
    );
    await sleep(50);
    assert.equal(echoCompleted, before, `seed ${SEED}: a dropped request reached the handler`);
    assert.equal(proxy.stats().connectionsDropped, 1);
    proxy.setDropMidRequest(0, createRng(SEED));
    const response = await postJson(`${proxy.url}/echo`, { key: 'k' }, { timeoutMs: WAIT_MS });
    assert.equal(response.status, 200);
  });

  it('replays the same drop schedule from the same seed', async () => {
    const outcomes: boolean[][] = [];
    for (let run = 0; run < 2; run += 1) {
      const proxy = await startProxy(httpPort);
      proxy.setDropMidRequest(0.5, createRng(SEED));
      const runOutcomes: boolean[] = [];
      for (let i = 0; i < 12; i += 1) {
        const ok = await getJson(`${proxy.url}/ping`, { timeoutMs: WAIT_MS }).then(
          () => true,
          () => false,
        );
        runOutcomes.push(ok);
      }
      outcomes.push(runOutcomes);
    }
    assert.deepEqual(outcomes[0], outcomes[1], `seed ${SEED}`);
    assert.ok(outcomes[0]!.includes(true) && outcomes[0]!.includes(false), `seed ${SEED}`);
  });

  it('close resets open connections and stops listening', async () => {
    const proxy = await startProxy(tcpPort);
    const client = await connect(proxy.port);
    await proxy.close();
    await waitFor(() => client.closed, { timeoutMs: WAIT_MS, message: 'connection closed' });
    await assert.rejects(rawRequest(proxy.port, 'x', { timeoutMs: WAIT_MS }), /ECONNREFUSED/);
  });
});

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      assert.ok(address !== null && typeof address === 'object');
      resolve(address.port);
    });
  });
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
}
