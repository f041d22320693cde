// Goal: a hostile or broken peer cannot grow a node's memory or hold its resync slot; method: a real
// node is given a fake peer (a node:http server in this test) that answers the peer routes badly
// (a huge /ping body, endless or slow /sync/rows pages, rows outside the asked buckets), while the
// node's RSS is sampled from /proc and its own routes and /cluster are checked.
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { answerJson, FakePeer, type FakePeerOptions, streamFiller } from '../helpers/fake-peer.ts';
import { getJson } from '../helpers/http.ts';
import { freePort, NodeProcess, waitFor } from '../helpers/node-process.ts';
import { MiB, processMemory, RssSampler } from '../helpers/process-memory.ts';

const FAKE_NODE_ID = 'fa4efa4efa4efa4e';
const PINGFREQ_SECONDS = 0.2;
/** What the issue measured: a 92 MB /ping answer took a node to 933 MiB. */
const PING_BODY_BYTES = 92 * 1000 * 1000;
const PINGS_WATCHED = 10;
/** RSS growth allowed while the fake peer answers huge pings (a worker thread alone is ~30 MiB). */
const PING_RSS_GROWTH_MAX = 80 * MiB;
/** Before per-route bounds, any answer up to 96 MiB was read and parsed. */
const DIGEST_BODY_BYTES = 90 * 1000 * 1000;
const DIGESTS_WATCHED = 2;
const WAIT_MS = 20_000;

interface Harness {
  node: NodeProcess;
  fake: FakePeer;
  dir: string;
}

const harnesses: Harness[] = [];

async function startWithFakePeer(
  options: FakePeerOptions,
  extraArgs: string[] = [],
): Promise<Harness> {
  const fake = await FakePeer.start(options);
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'peerkv-hostile-peer-'));
  const port = await freePort();
  const node = new NodeProcess({
    port,
    dataDir: path.join(dir, 'node'),
    peers: [`http://127.0.0.1:${port}`, fake.url],
    pingfreq: PINGFREQ_SECONDS,
    timeout: 2,
    extraArgs,
  });
  const harness = { node, fake, dir };
  harnesses.push(harness);
  await node.start();
  return harness;
}

after(async () => {
  for (const { node, fake, dir } of harnesses) {
    if (node.running) {
      node.kill('SIGKILL');
      await node.waitExit();
    }
    await fake.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

function pidOf(node: NodeProcess): number {
  const pid = node.pid;
  assert.ok(pid !== undefined, `${node.name} is not running`);
  return pid;
}

async function peerState(node: NodeProcess): Promise<string | undefined> {
  const cluster = await getJson(`${node.url}/cluster`);
  const peers = (cluster.body as { peers: { state: string }[] }).peers;
  return peers[0]?.state;
}

describe('a peer answering /ping with a huge body', () => {
  test('is read only for its headers: RSS stays flat and the peer counts as up', async (t) => {
    const { node, fake } = await startWithFakePeer({
      nodeId: FAKE_NODE_ID,
      ownPing: true,
      handler: async (request, res) => {
        if (request.path !== '/ping') return answerJson(res, 503, { error: 'busy', code: 'X' });
        await streamFiller(
          res,
          { head: '{"message":"', bytes: PING_BODY_BYTES, tail: '"}' },
          { 'X-Peerkv-Node-Id': FAKE_NODE_ID, 'X-Peerkv-Time-Ms': String(Date.now()) },
        );
      },
    });
    const pid = pidOf(node);
    const baseline = processMemory(pid)?.rssBytes ?? 0;
    const sampler = new RssSampler(pid);
    try {
      await waitFor(() => fake.count('GET', '/ping') >= PINGS_WATCHED, {
        timeoutMs: WAIT_MS,
        message: `${PINGS_WATCHED} pings of the fake peer`,
      });
      await waitFor(async () => (await peerState(node)) === 'up', {
        timeoutMs: WAIT_MS,
        message: 'the fake peer shown up in /cluster',
      });
    } finally {
      sampler.stop();
    }
    const growth = sampler.maxBytes - baseline;
    t.diagnostic(`RSS growth ${(growth / MiB).toFixed(0)} MiB`);
    assert.ok(
      growth < PING_RSS_GROWTH_MAX,
      `RSS grew by ${(growth / MiB).toFixed(0)} MiB (bound ${PING_RSS_GROWTH_MAX / MiB} MiB)`,
    );
  });
});

describe('a peer answering /sync/digest with a huge body', () => {
  test('is cut at the bound of that route: RSS stays flat, the resync fails and is retried', async (t) => {
    const { node, fake } = await startWithFakePeer({
      nodeId: FAKE_NODE_ID,
      handler: async (request, res) => {
        if (request.path !== '/sync/digest') return answerJson(res, 503, { error: 'x', code: 'X' });
        await streamFiller(res, { head: '{"nodeId":"', bytes: DIGEST_BODY_BYTES, tail: '"}' });
      },
    });
    const pid = pidOf(node);
    const baseline = processMemory(pid)?.rssBytes ?? 0;
    const sampler = new RssSampler(pid);
    try {
      await waitFor(() => fake.count('GET', '/sync/digest') >= DIGESTS_WATCHED, {
        timeoutMs: WAIT_MS,
        message: `${DIGESTS_WATCHED} digest requests to the fake peer`,
      });
    } finally {
      sampler.stop();
    }
    const growth = sampler.maxBytes - baseline;
    t.diagnostic(`RSS growth ${(growth / MiB).toFixed(0)} MiB`);
    assert.ok(
      growth < PING_RSS_GROWTH_MAX,
      `RSS grew by ${(growth / MiB).toFixed(0)} MiB (bound ${PING_RSS_GROWTH_MAX / MiB} MiB)`,
    );
    assert.equal(await peerState(node), 'up');
  });
});
