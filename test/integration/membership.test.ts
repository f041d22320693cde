// Checks membership at runtime on real node processes: a 3-node cluster (started with --peers)
// grows to 5 with `--join` under a steady write load and shrinks back to 3 through
// DELETE /cluster/members and `peerkv member remove`, with no acknowledged write lost, every
// remaining node converged and the removed nodes' cursors dropped; a member down during an
// addition and during a removal learns each when it comes back; a joined node restarted without
// --join keeps its members; and hostile membership requests change nothing.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { getJson, httpRequest, postJson } from '../helpers/http.ts';
import {
  type Cluster,
  freePort,
  NodeProcess,
  useCluster,
  waitFor,
} from '../helpers/node-process.ts';
import { runBin } from './cli-client-support.ts';
import { assertError } from './node-support.ts';
import {
  assertConverged,
  clusterView,
  Ledger,
  PINGFREQ_SECONDS,
  pingNodeId,
  putKey,
  TIMEOUT_SECONDS,
  waitAllUp,
  withLogsOnFailure,
} from './replication-support.ts';

const DEADLINE_MS = 30_000;

interface MemberView {
  readonly members: { url: string; state: string; nodeId: string | null; self: boolean }[];
}

async function memberUrls(url: string): Promise<string[]> {
  const answer = await getJson(`${url}/cluster/members`);
  assert.equal(answer.status, 200, answer.text);
  return (answer.body as MemberView).members
    .filter((member) => member.state === 'member')
    .map((member) => member.url)
    .sort();
}

/** Waits until `node` lists exactly `urls` as members and has every other one as a peer, up. */
async function waitMembers(node: NodeProcess, urls: readonly string[]): Promise<void> {
  const wanted = [...urls].sort();
  await waitFor(
    async () => {
      if ((await memberUrls(node.url)).join() !== wanted.join()) return false;
      const peers = (await clusterView(node.url)).peers.map((peer) => `${peer.url} ${peer.state}`);
      const others = wanted.filter((url) => url !== node.url).map((url) => `${url} up`);
      return peers.sort().join() === others.join();
    },
    { timeoutMs: DEADLINE_MS, message: `${node.name} has members ${wanted.join(' ')}` },
  );
}

/** Writes to the `targets` in turn until stopped; every acknowledged write goes in the ledger. */
function steadyWrites(targets: () => readonly NodeProcess[], ledger: Ledger) {
  let stopped = false;
  let count = 0;
  const done = (async () => {
    while (!stopped) {
      const list = targets();
      const node = list[count % list.length]!;
      await putKey(node.url, `load/${count % 500}`, count, ledger);
      count += 1;
    }
  })();
  return {
    get count() {
      return count;
    },
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

describe('membership at runtime', () => {
  let cluster: Cluster;
  const extra: NodeProcess[] = [];
  useCluster({ nodes: 3, pingfreq: PINGFREQ_SECONDS, timeout: TIMEOUT_SECONDS }, (started) => {
    cluster = started;
  });
  after(async () => {
    for (const node of extra) if (node.running) node.kill('SIGKILL');
    await Promise.all(extra.map((node) => node.running && node.waitExit()));
  });

  async function joiner(name: string, via: string): Promise<NodeProcess> {
    const port = await freePort();
    const node = new NodeProcess({
      port,
      dataDir: path.join(cluster.dir, name),
      peers: [],
      pingfreq: PINGFREQ_SECONDS,
      timeout: TIMEOUT_SECONDS,
      extraArgs: ['--join', via],
      logPath: path.join(cluster.dir, `${name}.log`),
      name: `${name}:${port}`,
    });
    extra.push(node);
    await node.start();
    await waitFor(async () => (await getJson(`${node.url}/readyz`)).status === 200, {
      timeoutMs: DEADLINE_MS,
      message: `${name} joined and ready`,
    });
    return node;
  }

  test('grow from 3 to 5 and back to 3 under a steady write load, losing no write', async () => {
    await withLogsOnFailure(cluster, async () => {
      const [a, b, c] = cluster.nodes as [NodeProcess, NodeProcess, NodeProcess];
      await waitAllUp(cluster.nodes, DEADLINE_MS);
      const ledger = new Ledger();
      let targets: NodeProcess[] = [a, b, c];
      const writer = steadyWrites(() => targets, ledger);
      try {
        const d = await joiner('node-d', a.url);
        const e = await joiner('node-e', b.url);
        const five = [a, b, c, d, e];
        for (const node of five)
          await waitMembers(
            node,
            five.map((n) => n.url),
          );
        targets = five;
        await waitFor(() => writer.count > 200, { timeoutMs: DEADLINE_MS, message: 'writes' });

        // Shrink: nothing is written to D and E from now on; what they took must survive them.
        targets = [a, b, c];
        const dId = await pingNodeId(d.url);
        const removed = await httpRequest('DELETE', `${a.url}/cluster/members/${dId}`);
        assert.equal(removed.status, 200, removed.text);
        const cli = await runBin(['member', 'remove', e.url, '--node', b.url]);
        assert.equal(cli.code, 0, cli.stderr);
        assert.match(cli.stdout, new RegExp(`removed ${e.url}`));
        const three = [a.url, b.url, c.url];
        for (const node of [a, b, c]) await waitMembers(node, three);
        for (const node of [d, e]) {
          await waitFor(async () => (await clusterView(node.url)).peers.length === 0, {
            timeoutMs: DEADLINE_MS,
            message: `${node.name} learns it was removed and stops replicating`,
          });
        }
        await waitFor(() => writer.count > 400, { timeoutMs: DEADLINE_MS, message: 'writes' });
        await writer.stop();
        // Every write D and E acknowledged reached the others before they were removed, or
        // through a resync: the three converge on the whole ledger after D and E stop.
        await d.stop();
        await e.stop();
        await assertConverged([a, b, c], ledger, DEADLINE_MS);
        for (const node of [a, b, c]) {
          const db = new Database(path.join(node.dataDir, 'peerkv.db'), { readonly: true });
          try {
            const urls = db.prepare('SELECT url FROM peers').pluck().all() as string[];
            assert.ok(!urls.includes(d.url) && !urls.includes(e.url), `${node.name}: ${urls}`);
          } finally {
            db.close();
          }
        }
      } finally {
        await writer.stop();
      }
    });
  });

  test('a member down during a change learns it when it comes back; a restart keeps members', async () => {
    await withLogsOnFailure(cluster, async () => {
      const [a, b, c] = cluster.nodes as [NodeProcess, NodeProcess, NodeProcess];
      await c.stop();
      const f = await joiner('node-f', a.url);
      await waitFor(async () => (await memberUrls(b.url)).includes(f.url), {
        timeoutMs: DEADLINE_MS,
        message: 'B learns F while C is down',
      });
      await c.start();
      const four = [a.url, b.url, c.url, f.url];
      await waitMembers(c, four);
      const ledger = new Ledger();
      await putKey(f.url, 'from-f', 1, ledger);
      await waitFor(async () => (await getJson(`${c.url}/kv/from-f`)).status === 200, {
        timeoutMs: DEADLINE_MS,
        message: 'a write on F reaches C',
      });

      // F was started with --join: without it (and with no --peers) it keeps what it learnt.
      await f.restart({ extraArgs: [] });
      await waitMembers(f, four);

      await c.stop();
      const removed = await httpRequest(
        'DELETE',
        `${b.url}/cluster/members/${encodeURIComponent(f.url)}`,
      );
      assert.equal(removed.status, 200, removed.text);
      await c.start();
      await waitMembers(c, [a.url, b.url, c.url]);
      await f.stop();
    });
  });

  test('a node from --peers is removed by node id, stays removed over a restart, and comes back', async () => {
    await withLogsOnFailure(cluster, async () => {
      const [a, b, c] = cluster.nodes as [NodeProcess, NodeProcess, NodeProcess];
      await waitAllUp(cluster.nodes, DEADLINE_MS);
      const cId = await pingNodeId(c.url);
      const removed = await httpRequest('DELETE', `${a.url}/cluster/members/${cId}`);
      assert.equal(removed.status, 200, removed.text);
      for (const node of [a, b]) await waitMembers(node, [a.url, b.url]);
      await waitFor(async () => (await clusterView(c.url)).peers.length === 0, {
        timeoutMs: DEADLINE_MS,
        message: 'C learns it was removed',
      });
      // B restarts with its old --peers, C included: the removal still holds.
      await b.restart();
      await waitMembers(b, [a.url, b.url]);
      // While removed, C acknowledges the delete of a key it never received: it must keep the
      // tombstone (it is not a lone node), so the delete wins once C is back.
      await putKey(a.url, 'while-c-out', 'on a', new Ledger());
      const gone = await httpRequest('DELETE', `${c.url}/kv/while-c-out`);
      assert.equal(gone.status, 200, gone.text);

      const cli = await runBin(['member', 'add', c.url, '--node', b.url, '--json']);
      assert.equal(cli.code, 0, cli.stderr);
      assert.equal((JSON.parse(cli.stdout) as { added: boolean }).added, true);
      for (const node of [a, b, c]) await waitMembers(node, [a.url, b.url, c.url]);
      const ledger = new Ledger();
      await putKey(c.url, 'back-on-c', 1, ledger);
      await waitFor(async () => (await getJson(`${a.url}/kv/back-on-c`)).status === 200, {
        timeoutMs: DEADLINE_MS,
        message: 'a write on C reaches A again',
      });
      await waitFor(async () => (await getJson(`${a.url}/kv/while-c-out`)).status === 404, {
        timeoutMs: DEADLINE_MS,
        message: "C's delete of a key it never held reaches A",
      });
    });
  });

  test('hostile membership requests get JSON errors and change nothing', async () => {
    const a = cluster.node(0);
    const before = await memberUrls(a.url);
    const bad: unknown[] = [
      {},
      { url: 42 },
      { url: 'ftp://127.0.0.1:1' },
      { url: 'http://127.0.0.1:1/path' },
      { url: 'http://user:pw@127.0.0.1:1' },
      { url: `http://${'h'.repeat(3_000)}` },
      [],
    ];
    for (const body of bad) {
      assertError(await postJson(`${a.url}/cluster/members`, body), 400, 'BAD_REQUEST');
    }
    assertError(
      await httpRequest('POST', `${a.url}/cluster/members`, { rawBody: '{bad' }),
      400,
      'BAD_JSON',
    );
    assertError(
      await httpRequest('DELETE', `${a.url}/cluster/members/0123456789abcdef`),
      404,
      'NOT_FOUND',
    );
    assertError(
      await httpRequest('DELETE', `${a.url}/cluster/members/%E0%A4%A`),
      400,
      'BAD_REQUEST',
    );
    const self = await pingNodeId(a.url);
    assertError(
      await httpRequest('DELETE', `${a.url}/cluster/members/${self}`),
      409,
      'CANNOT_REMOVE_SELF',
    );
    const rows = [
      { members: 'x' },
      { members: [{ ...row('http://127.0.0.1:1'), version: 'nope' }] },
      { members: [{ ...row('http://127.0.0.1:1'), state: 'maybe' }] },
      { members: [{ ...row('http://127.0.0.1:1'), nodeId: 'zz' }] },
      { members: [row('http://127.0.0.1:1/x')] },
      { members: [], peers: [{ nodeId: '0000000000000abc', url: 'nope' }] },
      { members: Array.from({ length: 1_001 }, (_, i) => row(`http://127.0.0.1:${i + 1}`)) },
    ];
    for (const body of rows) {
      assertError(await postJson(`${a.url}/sync/members`, body), 400, 'BAD_REQUEST');
    }
    assertError(
      await postJson(`${a.url}/cluster/members`, { url: `http://127.0.0.1:${await freePort()}` }),
      502,
      'MEMBER_UNREACHABLE',
    );
    const again = await postJson(`${a.url}/cluster/members`, { url: cluster.node(1).url });
    assert.equal(again.status, 200, again.text);
    assert.equal((again.body as { added: boolean }).added, false);
    assert.deepEqual(await memberUrls(a.url), before);
    assert.equal((await getJson(`${a.url}/ping`)).status, 200);
  });
});

function versionAt(timestamp: number): string {
  return `${timestamp.toString(16).padStart(14, '0')}-0000000000000abc`;
}

function row(url: string) {
  return { nodeId: '0000000000000abc', url, state: 'member', version: versionAt(1) };
}
