// Goal: tombstones go away once every member holds them and the grace has passed, and no deleted
// key ever comes back. Method: real node processes with --tombstone-grace 2 (a second's step):
// - deletes under a steady write load: the tombstone count rises, then falls to 0 on every node,
//   every deleted key answers 404 everywhere, the hashes agree and the live content is the ledger;
// - a member killed for three times the grace: the others keep its tombstones while it is away
//   (they cannot prove it holds them), remove them once it is back and level, and no deleted key
//   reappears on any node;
// - a backup taken before deletes, restored as a new node after those tombstones were removed:
//   its stale values are refused with a clear error (peerkv_entries_behind_horizon_total, the
//   log says to rebuild it), and the deleted keys stay deleted on every member;
// - a member removed for good (killed, then DELETE /cluster/members/<id>): removal pauses, then,
//   once the removal is a grace old and the two left covered each other, goes on; started again
//   with its old data it cannot be added back (409 MEMBER_CLOSED) and nothing of it comes back.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { getJson, httpRequest, postJson } from '../helpers/http.ts';
import {
  type Cluster,
  freePort,
  NodeProcess,
  startCluster,
  waitFor,
} from '../helpers/node-process.ts';
import { runPeerkv } from './node-support.ts';
import {
  assertContent,
  deleteKey,
  Ledger,
  PINGFREQ_SECONDS,
  pingNodeId,
  putKey,
  runBounded,
  TIMEOUT_SECONDS,
  waitSameHash,
  withLogsOnFailure,
} from './replication-support.ts';

const GRACE_SECONDS = 2;
const FLAGS = ['--tombstone-grace', String(GRACE_SECONDS), '--anti-entropy', '1'];
const DEADLINE_MS = 45_000;
const IN_FLIGHT = 8;

async function tombstonesHeld(url: string): Promise<number> {
  const answer = await getJson(`${url}/cluster`);
  assert.equal(answer.status, 200, answer.text);
  const held = (answer.body as { node: { tombstones?: { held?: unknown } } }).node.tombstones?.held;
  assert.equal(typeof held, 'number', `GET /cluster on ${url} reports tombstones.held`);
  return held as number;
}

async function metric(url: string, name: string): Promise<number> {
  const answer = await getJson(`${url}/metrics`);
  const line = answer.text.split('\n').find((row) => row.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

async function waitNoTombstones(nodes: readonly NodeProcess[], what: string): Promise<void> {
  await waitFor(
    async () => {
      for (const node of nodes) if ((await tombstonesHeld(node.url)) > 0) return false;
      return true;
    },
    { timeoutMs: DEADLINE_MS, message: what },
  );
}

async function assertDeletedEverywhere(nodes: readonly NodeProcess[], keys: readonly string[]) {
  for (const node of nodes) {
    for (const key of keys) {
      const answer = await getJson(`${node.url}/kv/${encodeURIComponent(key)}`);
      assert.equal(answer.status, 404, `${key} stays deleted on ${node.name}: ${answer.text}`);
    }
  }
}

/** `count` keys `prefix0..` written to `node`, and the cluster settled: the ledger and the keys. */
async function settledWith(
  started: Cluster,
  node: NodeProcess,
  prefix: string,
  count: number,
  what: string,
): Promise<{ ledger: Ledger; keys: string[] }> {
  const ledger = new Ledger();
  const keys = Array.from({ length: count }, (_, i) => `${prefix}${i}`);
  await runBounded(keys, IN_FLIGHT, (key, i) => putKey(node.url, key, i, ledger).then());
  await waitSameHash(started.nodes, DEADLINE_MS, what);
  return { ledger, keys };
}

describe('tombstone removal', () => {
  let cluster: Cluster | undefined;
  const extra: NodeProcess[] = [];
  after(async () => {
    for (const node of extra) if (node.running) node.kill('SIGKILL');
    await Promise.all(extra.map((node) => node.running && node.waitExit()));
    await cluster?.cleanup();
  });

  /** A fresh 3-node cluster with a short grace for `body`, its logs shown if it fails, then removed. */
  async function withGcCluster(body: (started: Cluster) => Promise<void>): Promise<void> {
    const started = await startCluster({
      nodes: 3,
      pingfreq: PINGFREQ_SECONDS,
      timeout: TIMEOUT_SECONDS,
      extraArgs: FLAGS,
    });
    cluster = started;
    await withLogsOnFailure(started, () => body(started));
    await started.cleanup();
    cluster = undefined;
  }

  test('deletes under load: tombstones fall to 0 on every node, deleted keys stay deleted', async (t) => {
    await withGcCluster(async (started) => {
      const [a, b, c] = started.nodes;
      const ledger = new Ledger();
      const keys = Array.from({ length: 400 }, (_, i) => `doomed-${i}`);
      await runBounded(keys, IN_FLIGHT, (key, i) =>
        putKey([a, b, c][i % 3]!.url, key, i, ledger).then(),
      );
      const deleted = keys.slice(0, 300);
      let writing = true;
      const load = (async () => {
        for (let i = 0; writing; i += 1) await putKey(b!.url, `live-${i % 200}`, i, ledger);
      })();
      let heldMax = 0;
      await runBounded(deleted, IN_FLIGHT, async (key, i) => {
        await deleteKey([a, c][i % 2]!.url, key, ledger);
        if (i % 50 === 0) heldMax = Math.max(heldMax, await tombstonesHeld(a!.url));
      });
      writing = false;
      await load;
      heldMax = Math.max(heldMax, await tombstonesHeld(c!.url));
      assert.ok(heldMax > 0, 'deletes left tombstones before they were removed');
      await waitNoTombstones(started.nodes, 'every node removes its tombstones');
      await waitSameHash(started.nodes, DEADLINE_MS, 'the nodes agree once tombstones are gone');
      await assertContent(started.nodes, ledger.expected());
      await assertDeletedEverywhere(started.nodes, deleted);
      for (const node of started.nodes) {
        const removed = await metric(node.url, 'peerkv_tombstones_removed_total');
        assert.ok(removed >= deleted.length, `${node.name} removed ${removed} tombstones`);
      }
      t.diagnostic(`tombstones held at most ${heldMax} on one node before removal`);
    });
  });

  test('a member away for three graces: its peers keep the tombstones, then remove them; nothing comes back', async () => {
    await withGcCluster(async (started) => {
      const [a, b, c] = started.nodes as [NodeProcess, NodeProcess, NodeProcess];
      const { ledger, keys } = await settledWith(
        started,
        a,
        'k',
        100,
        'the cluster settles before the kill',
      );

      c.kill('SIGKILL');
      await c.waitExit();
      const deleted = keys.slice(0, 50);
      await runBounded(deleted, IN_FLIGHT, (key) => deleteKey(a.url, key, ledger).then());
      // Three graces (and many horizon steps) later the tombstones are all still there.
      await new Promise((resolve) => setTimeout(resolve, 3 * GRACE_SECONDS * 1_000));
      for (const node of [a, b]) {
        const held = await tombstonesHeld(node.url);
        assert.ok(held >= deleted.length, `${node.name} keeps ${held} tombstones while c is away`);
      }

      await c.start();
      await waitNoTombstones(started.nodes, 'tombstones removed once c is back');
      await waitSameHash(started.nodes, DEADLINE_MS, 'the nodes agree');
      await assertContent(started.nodes, ledger.expected());
      await assertDeletedEverywhere(started.nodes, deleted);
    });
  });

  test('a backup older than what was removed: its stale values are refused, deleted keys stay deleted', async () => {
    await withGcCluster(async (started) => {
      const [a, b, c] = started.nodes as [NodeProcess, NodeProcess, NodeProcess];
      const { ledger, keys } = await settledWith(
        started,
        a,
        'old-',
        60,
        'the cluster settles before the backup',
      );
      const backupFile = path.join(started.dir, 'before-deletes.db');
      const backup = await runPeerkv(['backup', '--node', c.url, '--out', backupFile], 60_000);
      assert.equal(backup.code, 0, backup.stderr);

      const deleted = keys.slice(0, 30);
      await runBounded(deleted, IN_FLIGHT, (key) => deleteKey(b.url, key, ledger).then());
      await waitNoTombstones(started.nodes, 'the deletes are removed past the horizon');

      const dataDir = path.join(started.dir, 'restored');
      const restore = await runPeerkv(['restore', backupFile, '--data-dir', dataDir], 60_000);
      assert.equal(restore.code, 0, restore.stderr);
      const port = await freePort();
      const restored = new NodeProcess({
        port,
        dataDir,
        peers: [],
        pingfreq: PINGFREQ_SECONDS,
        timeout: TIMEOUT_SECONDS,
        extraArgs: [...FLAGS, '--join', a.url],
        logPath: path.join(started.dir, 'restored.log'),
        name: `restored:${port}`,
      });
      extra.push(restored);
      await restored.start();
      await waitFor(
        async () => {
          let refused = 0;
          for (const node of started.nodes) {
            refused += await metric(node.url, 'peerkv_entries_behind_horizon_total');
          }
          return refused > 0;
        },
        { timeoutMs: DEADLINE_MS, message: 'the members refuse the backup’s stale values' },
      );
      // A few anti-entropy rounds later nothing of the backup has come back anywhere.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      await assertDeletedEverywhere(started.nodes, deleted);
      await assertContent(started.nodes, ledger.expected());
      const logs = started.nodes.map((node) => fs.readFileSync(node.logPath, 'utf8')).join('');
      assert.match(logs, /older than the tombstone horizon.*must be rebuilt from its peers/);
      const restoredLog = fs.readFileSync(restored.logPath, 'utf8');
      assert.match(restoredLog, /rebuild it from its peers/);
      restored.kill('SIGKILL');
      await restored.waitExit();
    });
  });

  test('a member removed for good: removal goes on without it, and it cannot come back with its data', async () => {
    await withGcCluster(async (started) => {
      const [a, b, c] = started.nodes as [NodeProcess, NodeProcess, NodeProcess];
      const { ledger, keys } = await settledWith(
        started,
        a,
        'gone-',
        80,
        'the cluster settles before c leaves',
      );
      const cId = await pingNodeId(c.url);
      c.kill('SIGKILL');
      await c.waitExit();
      const removed = await httpRequest('DELETE', `${a.url}/cluster/members/${cId}`);
      assert.equal(removed.status, 200, removed.text);

      const deleted = keys.slice(0, 40);
      await runBounded(deleted, IN_FLIGHT, (key, i) =>
        deleteKey([a, b][i % 2]!.url, key, ledger).then(),
      );
      await waitNoTombstones([a, b], 'a and b remove the tombstones without c');
      await waitSameHash([a, b], DEADLINE_MS, 'a and b agree');
      await assertDeletedEverywhere([a, b], deleted);
      for (const node of [a, b]) {
        // The log reaches its file a moment later (pino writes asynchronously).
        await waitFor(
          () =>
            /removed member's writes are closed on every member/.test(
              fs.readFileSync(node.logPath, 'utf8'),
            ),
          { timeoutMs: DEADLINE_MS, message: `${node.name} logs the release` },
        );
        const log = fs.readFileSync(node.logPath, 'utf8');
        assert.match(
          log,
          /not yet closed on every member","msg":"tombstone removal paused/,
          node.name,
        );
        const view = await getJson(`${node.url}/cluster`);
        const tombstones = (view.body as { node: { tombstones: { paused: unknown } } }).node
          .tombstones;
        assert.equal(tombstones.paused, null, `${node.name} no longer waits for c`);
      }

      // b restarts with its old --peers, c's address among them, while c stays down: it knows
      // that address reaches a removed node, so removal keeps going.
      await b.restart();
      const later = keys.slice(40, 60);
      await runBounded(later, IN_FLIGHT, (key) => deleteKey(a.url, key, ledger).then());
      await waitNoTombstones([a, b], 'removal goes on after b restarted');
      deleted.push(...later);

      // c comes back with everything it had, the deleted keys' values among them.
      await c.start();
      const again = await postJson(`${a.url}/cluster/members`, { url: c.url });
      assert.equal(again.status, 409, again.text);
      assert.equal((again.body as { code?: string }).code, 'MEMBER_CLOSED');
      assert.match(again.text, /--data-dir/);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      await assertDeletedEverywhere([a, b], deleted);
      const members = await getJson(`${b.url}/cluster/members`);
      const listed = (members.body as { members: { nodeId: string | null; state: string }[] })
        .members;
      assert.ok(
        !listed.some((member) => member.nodeId === cId && member.state === 'member'),
        'c stays out',
      );
      await assertContent([a, b], ledger.expected());
    });
  });
});
