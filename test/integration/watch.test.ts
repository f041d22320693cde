// Checks the resumable watch (GET /watch, Server-Sent Events) on a real two-node cluster with
// undici's EventSource: a watcher on B sees A's writes under its prefix, expiries arrive as
// deletes, a watcher restarted from its last id four times misses nothing and repeats nothing
// across 10,000 writes, watchers that never read are cut off with an error event while the node's
// memory stays flat, the watcher limit, heartbeats, and hostile parameters.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { before, describe, test } from 'node:test';
import { EventSource } from 'undici';
import { getJson, httpRequest, postJson, putJson } from '../helpers/http.ts';
import { type Cluster, useCluster, waitFor } from '../helpers/node-process.ts';
import { assertError } from './node-support.ts';

interface Seen {
  readonly id: number;
  readonly type: string;
  readonly data: { key: string; value?: unknown; version: string; expired?: boolean };
}

/** An EventSource that records every put and delete event. */
function watch(url: string): { source: EventSource; seen: Seen[]; errors: string[] } {
  const source = new EventSource(url);
  const seen: Seen[] = [];
  const errors: string[] = [];
  for (const type of ['put', 'delete']) {
    source.addEventListener(type, (event) => {
      const message = event as unknown as { data: string; lastEventId: string };
      seen.push({ id: Number(message.lastEventId), type, data: JSON.parse(message.data) });
    });
  }
  source.addEventListener('error', (event) => {
    const data = (event as unknown as { data?: unknown }).data;
    if (typeof data === 'string') errors.push(data);
  });
  return { source, seen, errors };
}

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(match, 'VmRSS readable');
  return Number(match[1]) * 1024;
}

/** A socket that asks for a watch and then never reads. */
function stalledWatcher(port: number, path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      socket.pause();
      resolve(socket);
    });
    socket.on('error', reject);
  });
}

async function writeBatches(url: string, prefix: string, count: number, valueBytes = 8) {
  const value = 'v'.repeat(valueBytes);
  for (let start = 0; start < count; start += 1_000) {
    const ops = Array.from({ length: Math.min(1_000, count - start) }, (_, i) => ({
      op: 'put',
      key: `${prefix}${String(start + i).padStart(6, '0')}`,
      value,
    }));
    const answer = await postJson(`${url}/batch`, { ops }, { timeoutMs: 30_000 });
    assert.equal(answer.status, 200, answer.text.slice(0, 200));
  }
}

describe('the resumable watch', () => {
  let cluster: Cluster;
  let a = '';
  let b = '';
  useCluster(
    {
      nodes: 2,
      pingfreq: 0.25,
      timeout: 2,
      extraArgs: (index) =>
        index === 1
          ? ['--max-watchers', '2', '--watch-heartbeat', '0.3', '--expiry-sweep', '0.2']
          : [],
    },
    (started) => {
      cluster = started;
    },
  );
  before(() => {
    a = cluster.node(0).url;
    b = cluster.node(1).url;
  });

  // Each write waits for its event on B before the next: B's change sequence keeps the latest
  // change of a key, so a put and a delete that reach B together arrive as the delete alone.
  test('a watcher on B sees writes made on A under its prefix, and expiries as deletes', async () => {
    const w = watch(`${b}/watch?prefix=${encodeURIComponent('room/')}`);
    const events = (count: number, what: string) =>
      waitFor(() => w.seen.length >= count, { timeoutMs: 30_000, message: `${what} on B` });
    try {
      await new Promise((resolve) => w.source.addEventListener('open', resolve, { once: true }));
      await putJson(`${a}/kv/other`, 0);
      await putJson(`${a}/kv/room%2F1`, { n: 1 });
      await events(1, 'put room/1');
      await putJson(`${a}/kv/room%2F2?ttl=3`, 'brief');
      await events(2, 'put room/2');
      await httpRequest('DELETE', `${a}/kv/room%2F1`);
      await events(4, 'delete room/1 and the expiry of room/2');
      assert.deepEqual(
        w.seen.map((s) => `${s.type} ${s.data.key}`),
        ['put room/1', 'put room/2', 'delete room/1', 'delete room/2'],
      );
      assert.deepEqual(w.seen[0]!.data.value, { n: 1 });
      assert.equal(w.seen[3]!.data.expired, true);
      const ids = w.seen.map((s) => s.id);
      assert.deepEqual(
        [...ids].sort((x, y) => x - y),
        ids,
        'ids increase',
      );
    } finally {
      w.source.close();
    }
  });

  test('restarted from its last id four times, a watcher misses and repeats nothing of 10,000 writes', async () => {
    const start = (await getJson(`${a}/cluster`)).body as { node: { seq: number } };
    let lastId = start.node.seq;
    const all: Seen[] = [];
    const writing = writeBatches(a, 'w/', 10_000);
    for (let round = 0; round < 5; round += 1) {
      const w = watch(`${a}/watch?prefix=w%2F&since=${lastId}`);
      const target = round === 4 ? 10_000 : (round + 1) * 2_000;
      await waitFor(() => all.length + w.seen.length >= target, {
        timeoutMs: 60_000,
        message: `round ${round} reaches ${target} events`,
      });
      w.source.close();
      all.push(...w.seen);
      lastId = all.at(-1)!.id;
    }
    await writing;
    const keys = all.map((s) => s.data.key);
    assert.equal(new Set(keys).size, keys.length, 'no key delivered twice');
    assert.equal(keys.length, 10_000, 'every write delivered');
    for (let i = 1; i < all.length; i += 1) assert.ok(all[i]!.id > all[i - 1]!.id, 'ids increase');
  });

  test('watchers that never read are cut off with an error event; memory stays flat', async () => {
    const node = cluster.node(0);
    const port = node.port;
    const pid = node.pid!;
    // The node's own footprint under this load (heap, page cache, worker threads) is reached
    // first without watchers, so what is measured after is what six stalled watchers add.
    await writeBatches(a, 'warm/', 30_000, 2_048);
    const rssBefore = rssBytes(pid);
    const stalled = await Promise.all(
      Array.from({ length: 6 }, () => stalledWatcher(port, '/watch?prefix=slow%2F')),
    );
    // 30,000 changes of 2 KiB: 60 MiB per watcher if it were buffered, 360 MiB for six.
    await writeBatches(a, 'slow/', 30_000, 2_048);
    await waitFor(
      async () => {
        const view = (await getJson(`${a}/cluster`)).body as { node: { watchersCutOff: number } };
        return view.node.watchersCutOff >= 6;
      },
      { timeoutMs: 30_000, message: 'six watchers cut off' },
    );
    const growth = rssBytes(pid) - rssBefore;
    process.stderr.write(`six stalled watchers: RSS grew ${(growth / 1048576).toFixed(1)} MiB\n`);
    // Buffered, six watchers would hold 360 MiB; bounded, they add a page each (seen: 23-71 MiB
    // under the full suite, the rest is the heap and page cache moving).
    assert.ok(growth < 160 * 1024 * 1024, `RSS grew ${Math.round(growth / 1048576)} MiB`);
    const text = await new Promise<string>((resolve) => {
      const socket = stalled[0]!;
      let received = '';
      socket.on('data', (chunk) => {
        received += chunk.toString('latin1');
      });
      socket.on('close', () => resolve(received));
      socket.resume();
    });
    assert.match(text, /event: error\ndata: \{"error":"[^"]+","code":"WATCH_TOO_SLOW"\}/);
    for (const socket of stalled) socket.destroy();
  });

  test('the watcher limit, heartbeats, and a resume point this node never reached', async () => {
    const first = await stalledWatcher(cluster.node(1).port, '/watch');
    const second = watch(`${b}/watch`);
    try {
      await new Promise((resolve) =>
        second.source.addEventListener('open', resolve, { once: true }),
      );
      const third = await getJson(`${b}/watch`);
      assertError(third, 503, 'TOO_MANY_WATCHERS');
      assert.equal(third.headers['retry-after'], '5');
    } finally {
      second.source.close();
    }
    const heartbeat = await new Promise<string>((resolve) => {
      let received = '';
      first.on('data', (chunk) => {
        received += chunk.toString('latin1');
        if (received.includes(': heartbeat')) resolve(received);
      });
      first.resume();
    });
    assert.match(heartbeat, /text\/event-stream/);
    first.destroy();
    const ahead = await httpRequest('GET', `${b}/watch`, {
      headers: { 'last-event-id': '999999999' },
    });
    assert.equal(ahead.status, 200);
    assert.match(ahead.text, /event: error\ndata: .*"code":"HISTORY_UNAVAILABLE"/);
  });

  test('hostile watch parameters get JSON errors and leave the node serving', async () => {
    const cases: [string, Record<string, string>, number, string][] = [
      ['/watch?since=-1', {}, 400, 'BAD_REQUEST'],
      ['/watch?since=abc', {}, 400, 'BAD_REQUEST'],
      ['/watch?since=1e3', {}, 400, 'BAD_REQUEST'],
      ['/watch?since=1&since=2', {}, 400, 'BAD_REQUEST'],
      ['/watch?since=9999999999999999', {}, 400, 'BAD_REQUEST'],
      ['/watch', { 'last-event-id': 'x' }, 400, 'BAD_REQUEST'],
      ['/watch?prefix=a&prefix=b', {}, 400, 'BAD_REQUEST'],
      ['/watch?prefix=%FF', {}, 400, 'BAD_REQUEST'],
      [`/watch?prefix=${'p'.repeat(1_025)}`, {}, 400, 'KEY_TOO_LARGE'],
    ];
    for (const [path, headers, status, code] of cases) {
      assertError(await httpRequest('GET', `${a}${path}`, { headers }), status, code, path);
    }
    assertError(await httpRequest('POST', `${a}/watch`), 405, 'METHOD_NOT_ALLOWED');
    assert.equal((await getJson(`${a}/ping`)).status, 200);
  });
});
