/**
 * Before/after figures for issue 9, points 6-9 (greedy clients, hostile peers), at the sizes the
 * issue measured — too heavy for `npm test`, whose tests run the same scenarios smaller.
 *
 *   npx tsx bench/hostile-figures.ts [--entry <checkout>/src/main.ts] [--only p6,p7,p8,p9]
 *
 * --entry runs another checkout's node (e.g. the commit before the fixes) under the same driver.
 * Prints one JSON line per scenario: peak RSS growth of the node (sampled from /proc every 20 ms),
 * answers, and what the scenario is about. Kills every node it started.
 */
import fsp from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import minimist from 'minimist';
import { BUCKETS, bucketOf, GROUPS } from '../src/store/digest.ts';
import {
  answerJson,
  FakePeer,
  type FakePeerOptions,
  streamFiller,
} from '../test/helpers/fake-peer.ts';
import { getJson, postJson, putJson, sleep } from '../test/helpers/http.ts';
import { freePort, NodeProcess } from '../test/helpers/node-process.ts';
import { MiB, processMemory, RssSampler } from '../test/helpers/process-memory.ts';
import { exchange } from '../test/integration/hostile-support.ts';

const args = minimist(process.argv.slice(2), { string: ['entry', 'only'] });
const entry: string | undefined = args.entry;
const only = new Set(String(args.only ?? 'p6,p7,p8,p9').split(','));
const FAKE_ID = 'fa4efa4efa4efa4e';
const started: NodeProcess[] = [];
const fakes: FakePeer[] = [];
const dirs: string[] = [];

async function startNode(extraPeers: string[] = [], extraArgs: string[] = [], timeout = 2) {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'peerkv-figures-'));
  dirs.push(dir);
  const port = await freePort();
  const node = new NodeProcess({
    port,
    dataDir: path.join(dir, 'node'),
    peers: [`http://127.0.0.1:${port}`, ...extraPeers],
    pingfreq: 0.2,
    timeout,
    extraArgs,
    ...(entry ? { entry } : {}),
  });
  started.push(node);
  await node.start();
  await sleep(1_000);
  return node;
}

async function measure<T>(node: NodeProcess, run: () => Promise<T>) {
  const pid = node.pid!;
  const baseline = processMemory(pid)?.rssBytes ?? 0;
  const sampler = new RssSampler(pid, 20);
  const startedMs = performance.now();
  const result = await run().finally(() => sampler.stop());
  return {
    rssGrowthMiB: Math.round((sampler.maxBytes - baseline) / MiB),
    seconds: Math.round((performance.now() - startedMs) / 100) / 10,
    alive: node.running,
    ...result,
  };
}

function print(name: string, what: string, figures: unknown): void {
  process.stdout.write(
    `${JSON.stringify({ name, what, entry: entry ?? 'this checkout', figures })}\n`,
  );
}

function tally(items: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[item] = (counts[item] ?? 0) + 1;
  return counts;
}

// --- point 6: 32 concurrent 60 MB /replicate bodies ---------------------------------------
async function p6(): Promise<void> {
  const node = await startNode();
  const filler = Buffer.alloc(MiB, 0x61);
  const chunked = Buffer.concat([
    Buffer.from(`${MiB.toString(16)}\r\n`),
    filler,
    Buffer.from('\r\n'),
  ]);
  const bodyBytes = 60 * 1000 * 1000;
  const request = (isChunked: boolean): Buffer[] => {
    const framing = isChunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${bodyBytes}`;
    const head = `POST /replicate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${framing}\r\nConnection: close\r\n\r\n`;
    const parts = Array.from({ length: Math.ceil(bodyBytes / MiB) }, () =>
      isChunked ? chunked : filler,
    );
    return [Buffer.from(head), ...parts, Buffer.from(isChunked ? '0\r\n\r\n' : '')];
  };
  const figures = await measure(node, async () => {
    const answers = await Promise.all(
      Array.from({ length: 32 }, (_, i) =>
        exchange(node.port, request(i % 2 === 1), { timeoutMs: 120_000, earlyAnswerMs: 100 }),
      ),
    );
    return { answers: tally(answers.map((a) => String(a.status ?? a.outcome))) };
  });
  print(
    'p6',
    '32 concurrent 60 MB POST /replicate bodies (half Content-Length, half chunked)',
    figures,
  );
}

// --- point 9: a peer answering /ping with 92 MB --------------------------------------------
async function p9(): Promise<void> {
  const fake = await FakePeer.start({
    nodeId: FAKE_ID,
    ownPing: true,
    handler: async (request, res) => {
      if (request.path !== '/ping') return answerJson(res, 503, { error: 'x', code: 'X' });
      await streamFiller(
        res,
        { head: '{"message":"', bytes: 92 * 1000 * 1000, tail: '"}' },
        { 'X-Peerkv-Node-Id': FAKE_ID, 'X-Peerkv-Time-Ms': String(Date.now()) },
      );
    },
  });
  fakes.push(fake);
  const node = await startNode([fake.url], [], 5);
  const figures = await measure(node, async () => {
    const ownPingMs: number[] = [];
    const until = performance.now() + 10_000;
    while (performance.now() < until) {
      const ping = await getJson(`${node.url}/ping`, { timeoutMs: 10_000 }).catch(() => undefined);
      ownPingMs.push(Math.round(ping?.elapsedMs ?? 10_000));
      await sleep(200);
    }
    return { pingsOfFake: fake.count('GET', '/ping'), ownPingMsMax: Math.max(...ownPingMs) };
  });
  print('p9', 'a fake peer answering every /ping with a 92 MB body, for 10 s', figures);
}

// --- point 8: endless pages, and a slow peer holding the slot -----------------------------
function resyncPeer(
  nodeUrl: () => string,
  declare: (counts: Map<number, number>) => Map<number, number>,
  rows: (req: { buckets: number[]; values: boolean }, res: ServerResponse) => void | Promise<void>,
): FakePeerOptions {
  return {
    nodeId: FAKE_ID,
    handler: async (request, res) => {
      if (request.path === '/sync/digest') {
        return answerJson(res, 200, {
          nodeId: FAKE_ID,
          root: 'f'.repeat(64),
          groups: Array(GROUPS).fill('x'),
          backlog: 0,
          resyncing: false,
        });
      }
      if (request.path === '/sync/buckets') {
        const groups = (JSON.parse(request.body) as { groups: number[] }).groups;
        const mine = await postJson(`${nodeUrl()}/sync/buckets`, {
          groups: Array.from({ length: GROUPS }, (_, g) => g),
        });
        const sums = new Map<number, [number, number]>();
        for (const [b, sum, count] of (mine.body as { buckets: number[][] }).buckets)
          sums.set(b!, [sum!, count!]);
        const declared = declare(new Map([...sums].map(([b, [, count]]) => [b, count])));
        const buckets: number[][] = [];
        for (const group of groups) {
          for (let b = group * (BUCKETS / GROUPS); b < (group + 1) * (BUCKETS / GROUPS); b += 1) {
            const [sum, count] = sums.get(b)!;
            const fake = declared.get(b);
            buckets.push(fake === undefined ? [b, sum, count] : [b, (sum + 1) % 2 ** 48, fake]);
          }
        }
        return answerJson(res, 200, { buckets });
      }
      if (request.path === '/sync/rows') return rows(JSON.parse(request.body), res);
      return answerJson(res, 503, { error: 'x', code: 'X' });
    },
  };
}

function keysIn(buckets: readonly number[], count: number, prefix: string): string[] {
  const wanted = new Map(buckets.map((bucket, index) => [bucket, index]));
  const found: [number, string][] = [];
  for (let n = 0; found.length < count; n += 1) {
    const index = wanted.get(bucketOf(`${prefix}-${n}`));
    if (index !== undefined) found.push([index, `${prefix}-${n}`]);
  }
  found.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1));
  return found.map(([, key]) => key);
}

const version = (from: string) =>
  `${((Date.now() - 60_000) * 1024).toString(16).padStart(14, '0')}-${from}`;

async function seed(url: string, prefix: string, count: number, from: string): Promise<void> {
  const entries = Array.from({ length: count }, (_, i) => ({
    key: `${prefix}${i}`,
    value: i,
    version: version(from),
  }));
  await postJson(`${url}/replicate`, { from, entries });
}

async function p8(): Promise<void> {
  let nodeUrl = '';
  let pages = 0;
  const fake = await FakePeer.start(
    resyncPeer(
      () => nodeUrl,
      (counts) => new Map([...counts].filter(([, c]) => c > 0).map(([b]) => [b, 5])),
      (req, res) => {
        pages += 1;
        const keys = keysIn(req.buckets, 5_000, `endless-${String(pages).padStart(6, '0')}`);
        const last = keys.at(-1)!;
        answerJson(res, 200, {
          rows: keys.map((key) => ({ key, version: version('00000000000000ee') })),
          next: { bucket: bucketOf(last), key: last },
        });
      },
    ),
  );
  fakes.push(fake);
  const node = await startNode([fake.url], ['--anti-entropy', '1'], 5);
  nodeUrl = node.url;
  await seed(node.url, 'held-', 2_000, '00000000000000dd');
  const endless = await measure(node, async () => {
    const until = performance.now() + 16_000;
    let lastError: string | undefined;
    while (performance.now() < until && node.running) {
      const cluster = await getJson(`${node.url}/cluster`, { timeoutMs: 10_000 }).catch(
        () => undefined,
      );
      lastError =
        (cluster?.body as { peers?: { lastResync?: { error?: string } }[] })?.peers?.[0]?.lastResync
          ?.error ?? lastError;
      await sleep(500);
    }
    return { pagesServed: pages, lastResyncError: lastError };
  });
  print(
    'p8-endless',
    'a fake peer serving endless 5,000-row summary pages with fresh cursors, for 16 s',
    endless,
  );

  let slowPages = 0;
  let slowUrl = '';
  const realPort = await freePort();
  const slow = await FakePeer.start(
    resyncPeer(
      () => slowUrl,
      () => new Map([[7, 1]]),
      async (req, res) => {
        await sleep(1_000);
        slowPages += 1;
        const key = keysIn([7], 1, `slow-${String(slowPages).padStart(6, '0')}`)[0]!;
        answerJson(res, 200, {
          rows: [{ key, value: 'x', version: version('00000000000000ee') }],
          next: { bucket: 7, key },
        });
        void req;
      },
    ),
  );
  fakes.push(slow);
  const slowNode = await startNode(
    [slow.url, `http://127.0.0.1:${realPort}`],
    ['--anti-entropy', '1'],
    5,
  );
  slowUrl = slowNode.url;
  while (slow.count('POST', '/sync/rows') === 0) await sleep(100);
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'peerkv-figures-'));
  dirs.push(dir);
  const real = new NodeProcess({
    port: realPort,
    dataDir: path.join(dir, 'real'),
    peers: [`http://127.0.0.1:${realPort}`],
    pingfreq: 0.2,
    timeout: 2,
    ...(entry ? { entry } : {}),
  });
  started.push(real);
  await real.start();
  await seed(real.url, 'real-', 20, '00000000000000cc');
  const startedMs = performance.now();
  let repairedMs: number | null = null;
  while (performance.now() - startedMs < 40_000) {
    if ((await getJson(`${slowNode.url}/kv/real-19`).catch(() => undefined))?.status === 200) {
      repairedMs = Math.round(performance.now() - startedMs);
      break;
    }
    await sleep(200);
  }
  print(
    'p8-slow',
    'a fake peer serving a row a second holds the one resync slot; a real peer needs repair',
    { repairedMsAfterRealPeerUp: repairedMs, waitedUpToMs: 40_000 },
  );
}

// --- point 7: lock-out of clients and peers -----------------------------------------------
function pingFrom(port: number, localAddress: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    let data = '';
    const finish = (outcome: string): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish('timeout'), 3_000);
    socket.on('connect', () =>
      socket.write('GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'),
    );
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      if (data.includes('pong')) finish('200');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => finish(error.code ?? 'error'));
    socket.on('close', () => finish(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 'closed'));
  });
}

async function pings(
  port: number,
  localAddress: string,
  count = 20,
): Promise<Record<string, number>> {
  const outcomes: string[] = [];
  for (let i = 0; i < count; i += 1) {
    outcomes.push(await pingFrom(port, localAddress));
    await sleep(100);
  }
  return tally(outcomes);
}

function attack(
  port: number,
  addresses: string[],
  perAddress: number,
  kind: 'keep-alive' | 'drip',
) {
  const sockets = new Set<net.Socket>();
  let stopped = false;
  const open = (address: string): void => {
    if (stopped) return;
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: address });
    sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('data', () => undefined);
    let timer: NodeJS.Timeout | undefined;
    socket.on('connect', () => {
      if (kind === 'keep-alive') {
        const ping = () => socket.write('GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
        ping();
        timer = setInterval(ping, 4_000);
      } else {
        socket.write(
          'POST /store HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"key":"d","value":"',
        );
        timer = setInterval(() => socket.write('v'), 100);
      }
    });
    socket.once('close', () => {
      clearInterval(timer);
      sockets.delete(socket);
      if (kind === 'drip') setTimeout(() => open(address), 100);
    });
  };
  for (const address of addresses) for (let i = 0; i < perAddress; i += 1) open(address);
  return () => {
    stopped = true;
    for (const socket of sockets) socket.destroy();
  };
}

async function p7(): Promise<void> {
  const fake = await FakePeer.start({
    nodeId: 'c0ec0ec0ec0ec0ec',
    handler: (_r, res) => answerJson(res, 503, { error: 'x', code: 'X' }),
  });
  fakes.push(fake);
  const node = await startNode([fake.url], ['--max-connections', '20', '--request-timeout', '2']);
  const spread = Array.from({ length: 8 }, (_, i) => `127.0.0.${10 + i}`);
  const scenarios: [string, string[], number, 'keep-alive' | 'drip', string][] = [
    [
      '20 keep-alive sockets (4 addresses) pinging every 4 s; a client pings',
      spread.slice(0, 4),
      5,
      'keep-alive',
      '127.0.0.3',
    ],
    [
      '30 sockets from one address dripping bodies and reconnecting; a client pings',
      ['127.0.0.2'],
      30,
      'drip',
      '127.0.0.3',
    ],
    [
      '40 dripping sockets from 8 addresses; the peer address pings',
      spread,
      5,
      'drip',
      '127.0.0.1',
    ],
  ];
  for (const [what, addresses, perAddress, kind, from] of scenarios) {
    const stop = attack(node.port, addresses, perAddress, kind);
    await sleep(2_000);
    const outcomes = await pings(node.port, from);
    stop();
    print('p7', what, { pings: outcomes });
    await sleep(3_000);
  }
  const value = 'v'.repeat(1_000_000);
  for (let i = 0; i < 16; i += 1)
    await putJson(`${node.url}/kv/big-${String(i).padStart(2, '0')}`, value, { timeoutMs: 10_000 });
  await sleep(1_000);
  const figures = await measure(node, async () => {
    const read = await Promise.all(Array.from({ length: 10 }, () => unreadListing(node.port)));
    return { bytesDeliveredAfter10sPause: read };
  });
  print('p7', '10 clients that do not read a 16 MB GET /kv listing for 10 s', figures);
}

function unreadListing(port: number): Promise<number> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1' });
    let bytes = 0;
    const finish = (): void => {
      socket.destroy();
      resolve(bytes);
    };
    socket.on('connect', () => {
      socket.write('GET /kv?prefix=big-&limit=1000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      socket.pause();
      setTimeout(() => {
        socket.resume();
        setTimeout(finish, 3_000);
      }, 10_000);
    });
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    socket.on('error', finish);
    socket.on('close', finish);
  });
}

try {
  if (only.has('p6')) await p6();
  if (only.has('p9')) await p9();
  if (only.has('p8')) await p8();
  if (only.has('p7')) await p7();
} finally {
  for (const node of started) if (node.running) node.kill('SIGKILL');
  for (const fake of fakes) await fake.close();
  for (const dir of dirs) await fsp.rm(dir, { recursive: true, force: true });
}
