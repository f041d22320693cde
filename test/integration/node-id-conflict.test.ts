// Goal (issue 9, point 2): two live processes with one node id (a copied data dir) are reported
// and refuse client writes instead of taking each other for themselves; `peerkv new-id` ends it;
// method: node A writes, stops, its data dir is copied for B, both start peered; both report the
// conflict in /cluster and the log and answer writes 503 NODE_ID_CONFLICT; B is stopped, given a
// new id, restarted, and the two accept writes again and converge.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { getJson, putJson } from '../helpers/http.ts';
import { freePorts, NodeProcess, waitFor } from '../helpers/node-process.ts';
import { assertError, runPeerkv } from './node-support.ts';
import { pingNodeId, waitSameHash } from './replication-support.ts';

const DEADLINE_MS = 15_000;

let root = '';
let a: NodeProcess;
let b: NodeProcess;

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'peerkv-twins-'));
  const ports = await freePorts(2);
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  const make = (index: number, name: string) =>
    new NodeProcess({
      port: ports[index]!,
      dataDir: path.join(root, name),
      peers: urls,
      pingfreq: 0.25,
      timeout: 1,
      logPath: path.join(root, `${name}.log`),
      name,
    });
  a = make(0, 'a');
  b = make(1, 'b');
});

after(async () => {
  for (const node of [a, b]) if (node?.running) await node.stop();
  if (root && process.env.PEERKV_KEEP_TEST_DIRS !== '1')
    fs.rmSync(root, { recursive: true, force: true });
});

const conflicted = async (node: NodeProcess): Promise<boolean> =>
  ((await getJson(`${node.url}/cluster`)).body as { node: { nodeIdConflict: boolean } }).node
    .nodeIdConflict;

test('a copied data dir: both processes report the conflict and refuse writes until one gets a new id', async () => {
  try {
    await a.start();
    for (let index = 0; index < 5; index += 1) {
      assert.equal((await putJson(`${a.url}/kv/before-${index}`, index)).status, 200);
    }
    await a.stop();
    fs.cpSync(a.dataDir, b.dataDir, { recursive: true });
    await Promise.all([a.start(), b.start()]);
    assert.equal(await pingNodeId(a.url), await pingNodeId(b.url), 'one node id, two processes');

    for (const node of [a, b]) {
      await waitFor(() => conflicted(node), {
        timeoutMs: DEADLINE_MS,
        message: `${node.name} reports the conflict`,
      });
      assertError(await putJson(`${node.url}/kv/during`, 1), 503, 'NODE_ID_CONFLICT', node.name);
      assertError(await getJson(`${node.url}/readyz`), 503, 'NOT_READY', `${node.name} /readyz`);
      assert.match((await getJson(`${node.url}/metrics`)).text, /^peerkv_node_id_conflict\S* 1$/m);
      assert.match(fs.readFileSync(node.logPath, 'utf8'), /another process runs with this node id/);
      const peers = ((await getJson(`${node.url}/cluster`)).body as { peers: { state: string }[] })
        .peers;
      assert.equal(peers.length, 1, 'the twin is not taken for this node itself');
    }
    assert.equal((await getJson(`${a.url}/kv/before-1`)).status, 200, 'reads go on');

    await b.stop();
    const renamed = await runPeerkv(['new-id', '--data-dir', b.dataDir]);
    assert.equal(renamed.code, 0, renamed.stderr);
    assert.match(renamed.stdout, /node id of .* changed from [0-9a-f]{16} to [0-9a-f]{16}/);
    await b.start();
    assert.notEqual(await pingNodeId(a.url), await pingNodeId(b.url));
    for (const node of [a, b]) {
      await waitFor(async () => !(await conflicted(node)), {
        timeoutMs: DEADLINE_MS,
        message: `${node.name} no longer reports a conflict`,
      });
    }
    assert.equal((await getJson(`${a.url}/readyz`)).status, 200, 'ready again');
    assert.equal((await putJson(`${a.url}/kv/after-a`, 'a')).status, 200);
    assert.equal((await putJson(`${b.url}/kv/after-b`, 'b')).status, 200);
    await waitSameHash([a, b], DEADLINE_MS, 'the two converge once their ids differ');
    assert.equal((await getJson(`${b.url}/kv/after-a`)).status, 200);
  } catch (error) {
    process.stderr.write(`${a.tail(30)}\n${b.tail(30)}\n`);
    throw error;
  }
});
