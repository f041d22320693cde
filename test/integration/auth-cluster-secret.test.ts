// Checks the cluster secret on real node processes: three nodes sharing a secret file replicate;
// a caller without the secret, or with a wrong one, cannot write through any peer route (401,
// nothing applied); a fourth node with the wrong secret is refused and logged once per source per
// minute however often it retries; the secret shows in no log and in no /cluster answer.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { getJson, httpRequest, postJson } from '../helpers/http.ts';
import {
  type Cluster,
  freePorts,
  NodeProcess,
  startCluster,
  waitFor,
} from '../helpers/node-process.ts';
import { storeHash } from './node-support.ts';
import {
  assertNoSecretsInLogs,
  bearer,
  useSecretDir,
  writeSecretFile,
} from './security-support.ts';

const secretDir = useSecretDir();
const secretFile = path.join(secretDir(), 'cluster-secret');
const secret = writeSecretFile(secretFile);
const wrongSecret = `${secret.slice(0, -4)}beef`;
const REFUSED_LINE = 'request refused by authentication';
const FORGED_VERSION = { ts: 'fffffffffffff0', node: '0123456789abcdef' };

function refusedLines(logPath: string): number {
  return fs
    .readFileSync(logPath, 'utf8')
    .split('\n')
    .filter((line) => line.includes(REFUSED_LINE)).length;
}

const PEER_CALLS = [
  { method: 'POST', path: '/replicate', json: { key: 'forged', value: 'x' } },
  {
    method: 'POST',
    path: '/replicate',
    json: {
      from: FORGED_VERSION.node,
      entries: [
        { key: 'forged', value: 'x', version: `${FORGED_VERSION.ts}-${FORGED_VERSION.node}` },
      ],
    },
  },
  { method: 'GET', path: '/sync/digest' },
  { method: 'POST', path: '/sync/buckets', json: { groups: [0] } },
  { method: 'POST', path: '/sync/rows', json: { buckets: [0] } },
  { method: 'POST', path: '/sync/fetch', json: { keys: ['hello'] } },
] as const;

describe('a cluster sharing a --cluster-secret-file', () => {
  let cluster: Cluster;
  let wrong: NodeProcess;

  before(async () => {
    cluster = await startCluster({ extraArgs: ['--cluster-secret-file', secretFile] });
    const dataDir = path.join(cluster.dir, 'wrong');
    fs.mkdirSync(dataDir);
    const [port] = await freePorts(1);
    wrong = new NodeProcess({
      port: port!,
      dataDir,
      peers: cluster.urls,
      env: { PEERKV_CLUSTER_SECRET: wrongSecret },
      name: 'wrong-secret',
    });
  });
  after(async () => {
    if (wrong?.running) await wrong.stop();
    await cluster?.cleanup();
  });

  test('writes replicate between nodes that hold the secret', async () => {
    const write = await postJson(`${cluster.node(0).url}/store`, { key: 'hello', value: 'world' });
    assert.equal(write.status, 200, write.text);
    await waitFor(
      async () => (await getJson(`${cluster.node(2).url}/store/key?key=hello`)).status === 200,
      { timeoutMs: 10_000, message: 'hello replicated to node 2' },
    );
  });

  test('without the secret, or with a wrong one, every peer route answers 401 and applies nothing', async () => {
    const url = cluster.node(0).url;
    const hashBefore = await storeHash(url);
    const attempts = [{}, bearer(wrongSecret), { authorization: `Basic ${secret}` }];
    for (const headers of attempts) {
      for (const call of PEER_CALLS) {
        const json = 'json' in call ? call.json : undefined;
        const answer = await httpRequest(call.method, `${url}${call.path}`, { json, headers });
        assert.equal(answer.status, 401, `${call.method} ${call.path}: ${answer.text}`);
        assert.equal((answer.body as { code?: string }).code, 'UNAUTHENTICATED');
        assert.ok(!answer.text.includes(secret) && !answer.text.includes(wrongSecret));
      }
    }
    assert.equal((await getJson(`${url}/store/key?key=forged`)).status, 404);
    assert.equal(await storeHash(url), hashBefore);
    const good = await httpRequest('GET', `${url}/sync/digest`, { headers: bearer(secret) });
    assert.equal(good.status, 200, 'the right secret opens the peer routes');
  });

  test('a node with the wrong secret is refused, logged once per minute, and changes nothing', async () => {
    await wrong.start();
    const write = await postJson(`${wrong.url}/store`, { key: 'intruder', value: 'x' });
    assert.equal(write.status, 200);
    await waitFor(
      async () => {
        const status = await getJson(`${wrong.url}/cluster`);
        const peers = (status.body as { peers: { replication: { failures: number } }[] }).peers;
        return peers.length === 3 && peers.every((peer) => peer.replication.failures >= 3);
      },
      { timeoutMs: 15_000, message: 'the wrong node retried its pushes to every peer' },
    );
    const cluster1 = await getJson(`${wrong.url}/cluster`);
    assert.match(cluster1.text, /answered 401/);
    for (const node of cluster.nodes) {
      assert.equal((await getJson(`${node.url}/store/key?key=intruder`)).status, 404);
    }
    // Node 1 and 2 only ever heard from the wrong node (node 0 also had the direct calls above):
    // each refused many attempts from 127.0.0.1 and logged one line.
    for (const node of cluster.nodes.slice(1)) assert.equal(refusedLines(node.logPath), 1);
    assert.equal(refusedLines(cluster.node(0).logPath), 1);
  });

  test('the secret shows in no log, no /cluster answer and no command line (ps)', async () => {
    for (const node of [...cluster.nodes, wrong]) {
      const cmdline = fs.readFileSync(`/proc/${node.pid}/cmdline`, 'utf8');
      assert.ok(cmdline.includes('--port'), 'read the node command line');
      assert.ok(!cmdline.includes(secret) && !cmdline.includes(wrongSecret));
      const status = await getJson(`${node.url}/cluster`);
      assert.equal(status.status, 200);
      assert.ok(!status.text.includes(secret) && !status.text.includes(wrongSecret));
    }
    assertNoSecretsInLogs(
      [...cluster.nodes, wrong].map((node) => node.logPath),
      [secret, wrongSecret],
    );
  });
});
