// Goal: nodes started one after the other (as `npm start` does) replicate at once, not a whole
// --pingfreq later. Method: node A starts with --peers B while B is not listening yet (A's first
// ping of B fails), pinging every 20 s; B starts a moment later; a write on A right after B is ready
// must reach B within a few seconds, long before A's next regular ping.
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { getJson, postJson } from '../helpers/http.ts';
import { freePorts, NodeProcess, waitFor } from '../helpers/node-process.ts';

const PING_SECONDS = 20;
const REACH_DEADLINE_MS = 5_000;

const nodes: NodeProcess[] = [];
let dir = '';
after(async () => {
  for (const node of nodes) if (node.running) node.kill('SIGKILL');
  await Promise.all(nodes.map((node) => node.running && node.waitExit()));
  if (dir !== '') await fsp.rm(dir, { recursive: true, force: true });
});

test('a peer that was not listening yet is found within a second, not a ping period later', async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'peerkv-startup-'));
  const ports = await freePorts(2);
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  const [a, b] = ports.map(
    (port, i) =>
      new NodeProcess({
        port,
        dataDir: path.join(dir, `node-${i}`),
        peers: urls,
        pingfreq: PING_SECONDS,
        timeout: 2,
        logPath: path.join(dir, `node-${i}.log`),
        name: `node${i}:${port}`,
      }),
  ) as [NodeProcess, NodeProcess];
  nodes.push(a, b);
  await a.start();
  await waitFor(() => a.tail(50).includes('peer not reachable yet'), {
    timeoutMs: 10_000,
    message: "A's first ping of B failed",
  });
  await b.start();
  // B pulls what A holds in its own start-up resync; the write comes after it, so only A's
  // sender can carry it, and only once A has seen B up.
  await waitFor(
    async () => {
      const view = (await getJson(`${b.url}/cluster`)).body as {
        peers: { url: string; lastResync: unknown }[];
      };
      return view.peers.some((peer) => peer.url === a.url && peer.lastResync !== null);
    },
    { timeoutMs: 10_000, message: "B's start-up resync with A ran" },
  );
  const write = await postJson(`${a.url}/store`, { key: 'early', value: 1 });
  assert.equal(write.status, 200, write.text);
  await waitFor(async () => (await getJson(`${b.url}/store/key?key=early`)).status === 200, {
    timeoutMs: REACH_DEADLINE_MS,
    message: `the write reaches B well before A's next ping (${PING_SECONDS} s)`,
  });
});
