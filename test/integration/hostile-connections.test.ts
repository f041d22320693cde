// Goal: greedy clients cannot hold a node's connection slots and lock others out; method: a real
// node with --max-connections 20 (so 5 per client address, 5 slots kept for peers) and a peer on
// 127.0.0.1, attacked from other loopback addresses (127.0.0.2 and up) by keep-alive sockets that
// ping now and then, by bodies that drip and reconnect, and by clients that never read a 16 MB
// listing, while a normal client and a peer-address client ping on fresh connections.
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FakePeer } from '../helpers/fake-peer.ts';
import { putJson, sleep } from '../helpers/http.ts';
import { freePort, NodeProcess } from '../helpers/node-process.ts';
import { MiB, processMemory, RssSampler } from '../helpers/process-memory.ts';

const CONNECTIONS_MAX = 20;
const REQUEST_TIMEOUT_SECONDS = 2;
const PEER_ADDRESS = '127.0.0.1';
const CLIENT_ADDRESS = '127.0.0.3';
const ATTACKER_ADDRESS = '127.0.0.2';
/** Enough attacker addresses at 5 connections each to fill every slot not kept for peers. */
const SPREAD_ADDRESSES = Array.from({ length: 8 }, (_, i) => `127.0.0.${10 + i}`);
const PINGS = 5;
const PING_TIMEOUT_MS = 3_000;
const KEEP_ALIVE_PING_MS = 1_000;
const DRIP_MS = 100;
const RECONNECT_MS = 100;
const LISTING_VALUES = 16;
const LISTING_VALUE_CHARS = 1_000_000;
const LISTING_READERS = 10;
/** Past the exchange deadline (twice --request-timeout) with room to spare. */
const HOLD_UNREAD_MS = 2 * REQUEST_TIMEOUT_SECONDS * 1_000 + 4_000;
/** 10 unread 16 MB listings held whole grew a node by ~670 MiB; streamed and cut, ~200 MiB. */
const LISTING_RSS_GROWTH_MAX = 320 * MiB;

let node: NodeProcess;
let fake: FakePeer;
let dir = '';

before(async () => {
  fake = await FakePeer.start({
    nodeId: 'c0ec0ec0ec0ec0ec',
    handler: (_request, res) => {
      res.writeHead(503, { 'Content-Type': 'application/json' });
      res.end('{"error":"fake","code":"X"}');
    },
  });
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'peerkv-connections-'));
  const port = await freePort();
  node = new NodeProcess({
    port,
    dataDir: path.join(dir, 'node'),
    peers: [`http://127.0.0.1:${port}`, fake.url],
    extraArgs: [
      '--max-connections',
      String(CONNECTIONS_MAX),
      '--request-timeout',
      String(REQUEST_TIMEOUT_SECONDS),
    ],
  });
  await node.start();
});

after(async () => {
  if (node?.running) {
    node.kill('SIGKILL');
    await node.waitExit();
  }
  await fake?.close();
  if (process.env.PEERKV_KEEP_TEST_DIRS !== '1')
    await fsp.rm(dir, { recursive: true, force: true });
});

/** One GET /ping on a fresh connection from `localAddress`; the status, or the failure. */
function pingFrom(localAddress: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port: node.port, host: '127.0.0.1', localAddress });
    let data = '';
    const timer = setTimeout(() => finish('timeout'), PING_TIMEOUT_MS);
    const finish = (outcome: string): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    socket.on('connect', () => {
      socket.write('GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    });
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      if (data.includes('{"message":"pong"}')) finish('200');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => finish(error.code ?? 'error'));
    socket.on('close', () => finish(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 'closed'));
  });
}

async function pingsFrom(localAddress: string): Promise<string[]> {
  const outcomes: string[] = [];
  for (let i = 0; i < PINGS; i += 1) {
    outcomes.push(await pingFrom(localAddress));
    await sleep(100);
  }
  return outcomes;
}

/** Attacking sockets; stop() destroys them and stops reconnecting. */
class Attack {
  readonly #sockets = new Set<net.Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopped = false;

  /** Keep-alive sockets that each send GET /ping every KEEP_ALIVE_PING_MS. */
  keepAlive(localAddress: string, count: number): void {
    for (let i = 0; i < count; i += 1) {
      const socket = this.#open(localAddress);
      const ping = (): void => {
        if (!socket.destroyed) socket.write('GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      };
      socket.on('connect', ping);
      this.#every(KEEP_ALIVE_PING_MS, ping);
    }
  }

  /** Sockets that send a request head, then drip its body; each reconnects when closed. */
  drip(localAddress: string, count: number): void {
    for (let i = 0; i < count; i += 1) this.#dripOne(localAddress);
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers) clearInterval(timer);
    for (const socket of this.#sockets) socket.destroy();
  }

  #dripOne(localAddress: string): void {
    if (this.#stopped) return;
    const socket = this.#open(localAddress);
    socket.on('connect', () => {
      socket.write(
        'POST /store HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
          'Content-Length: 100000\r\n\r\n{"key":"drip","value":"',
      );
      const timer = this.#every(DRIP_MS, () => {
        if (!socket.destroyed) socket.write('v');
      });
      socket.once('close', () => clearInterval(timer));
    });
    socket.once('close', () => {
      const timer = setTimeout(() => this.#dripOne(localAddress), RECONNECT_MS);
      this.#timers.add(timer);
    });
  }

  #open(localAddress: string): net.Socket {
    const socket = net.connect({ port: node.port, host: '127.0.0.1', localAddress });
    this.#sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('data', () => undefined);
    socket.once('close', () => this.#sockets.delete(socket));
    return socket;
  }

  #every(ms: number, run: () => void): NodeJS.Timeout {
    const timer = setInterval(run, ms);
    this.#timers.add(timer);
    return timer;
  }
}

async function underAttack(setUp: (attack: Attack) => void, body: () => Promise<void>) {
  const attack = new Attack();
  try {
    setUp(attack);
    // Let the attack take the slots it can.
    await sleep(1_500);
    await body();
  } finally {
    attack.stop();
  }
}

describe(`--max-connections ${CONNECTIONS_MAX}`, () => {
  test('keep-alive sockets that ping now and then do not lock out a new client', async () => {
    await underAttack(
      (attack) => {
        // Four addresses at their share of five each: every slot clients may take.
        for (const address of SPREAD_ADDRESSES.slice(0, 4)) attack.keepAlive(address, 5);
      },
      async () => {
        const outcomes = await pingsFrom(CLIENT_ADDRESS);
        assert.deepEqual(outcomes, Array(PINGS).fill('200'), `pings: ${outcomes.join(',')}`);
      },
    );
  });

  test('one address dripping bodies and reconnecting holds only its share', async () => {
    await underAttack(
      (attack) => attack.drip(ATTACKER_ADDRESS, 30),
      async () => {
        const client = await pingsFrom(CLIENT_ADDRESS);
        assert.deepEqual(client, Array(PINGS).fill('200'), `client pings: ${client.join(',')}`);
        const peer = await pingsFrom(PEER_ADDRESS);
        assert.deepEqual(peer, Array(PINGS).fill('200'), `peer pings: ${peer.join(',')}`);
      },
    );
  });

  test('many addresses dripping bodies still leave the slots kept for peers', async () => {
    await underAttack(
      (attack) => {
        for (const address of SPREAD_ADDRESSES) attack.drip(address, 5);
      },
      async () => {
        const peer = await pingsFrom(PEER_ADDRESS);
        assert.deepEqual(peer, Array(PINGS).fill('200'), `peer pings: ${peer.join(',')}`);
      },
    );
  });

  test('clients that never read a 16 MB listing are cut on time', async (t) => {
    const value = 'v'.repeat(LISTING_VALUE_CHARS);
    for (let i = 0; i < LISTING_VALUES; i += 1) {
      const put = await putJson(`${node.url}/kv/big-${String(i).padStart(2, '0')}`, value, {
        timeoutMs: 10_000,
      });
      assert.equal(put.status, 200, put.text);
    }
    const pid = node.pid;
    assert.ok(pid !== undefined);
    await sleep(1_000);
    const baseline = processMemory(pid)?.rssBytes ?? 0;
    const sampler = new RssSampler(pid);
    const answers = await Promise.all(
      Array.from({ length: LISTING_READERS }, () => neverRead('/kv?prefix=big-&limit=1000')),
    ).finally(() => sampler.stop());
    const growth = sampler.maxBytes - baseline;
    t.diagnostic(
      `RSS growth ${(growth / MiB).toFixed(0)} MiB; bytes read after the pause: ${answers.map((a) => a.bytes).join(', ')}`,
    );
    // The kernel may take a whole answer into the socket buffers (the receive buffer grows to
    // tcp_rmem's maximum), which holds nothing of the node's; but most unread answers must be cut.
    const cut = answers.filter((answer) => !answer.whole).length;
    assert.ok(cut >= LISTING_READERS / 2, `only ${cut} of ${LISTING_READERS} unread answers cut`);
    assert.ok(growth < LISTING_RSS_GROWTH_MAX, `RSS grew by ${(growth / MiB).toFixed(0)} MiB`);
  });
});

/**
 * Sends a GET and does not read the answer for HOLD_UNREAD_MS; then reads what is left. A paused
 * socket sees no close, so whether the node cut it shows after: a cut answer ends short of its
 * last chunk, an answer the node kept for us comes whole (and the connection stays open).
 */
function neverRead(target: string): Promise<{ whole: boolean; bytes: number }> {
  return new Promise((resolve) => {
    const socket = net.connect({ port: node.port, host: '127.0.0.1', localAddress: PEER_ADDRESS });
    let received = Buffer.alloc(0);
    let bytes = 0;
    const finish = (): void => {
      clearTimeout(bound);
      socket.destroy();
      resolve({ whole: received.includes('\r\n0\r\n\r\n'), bytes });
    };
    socket.on('connect', () => {
      socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      socket.pause();
      setTimeout(() => socket.resume(), HOLD_UNREAD_MS);
    });
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      received = Buffer.concat([received.subarray(-16), chunk.subarray(-16)]);
      if (received.includes('\r\n0\r\n\r\n')) finish();
    });
    socket.on('error', finish);
    socket.on('close', finish);
    // A bound of our own, so a node that never cuts it cannot hang the test.
    const bound = setTimeout(finish, HOLD_UNREAD_MS + 10_000);
  });
}
