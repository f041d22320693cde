// Goal: a backup taken from a live node under a steady write load is a sound SQLite file holding
// every write acknowledged before it began, and that backup, restored later as a cluster member
// (new node id), converges with the others without bringing back keys deleted after it was taken
// or undoing writes made after it. Method: a real 3-node cluster; 30,000 preloaded keys (a copy
// of several backup steps), four writers on node 0 while `peerkv backup --out` runs against it;
// the file is opened with better-sqlite3; then deletes, rewrites and new keys land, node 2 is
// stopped, its data dir replaced by `peerkv restore --force`, and it is started again.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { formatVersion } from '../../src/version.ts';
import { getJson, postJson } from '../helpers/http.ts';
import { type Cluster, startCluster, waitFor } from '../helpers/node-process.ts';
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

const PRELOAD_KEYS = 30_000;
const BATCH_OPS = 1_000;
const WRITERS = 4;
const CONVERGE_MS = 90_000;
const CLI_MS = 120_000;

let cluster: Cluster;
const ledger = new Ledger();
let backupFile = '';
/** Keys preloaded before the backup, and which of them change after it. */
const preloaded: string[] = [];

before(async () => {
  cluster = await startCluster({ nodes: 3, pingfreq: PINGFREQ_SECONDS, timeout: TIMEOUT_SECONDS });
  backupFile = path.join(cluster.dir, 'node-0-backup.db');
});

after(async () => {
  await cluster?.cleanup();
});

async function preload(url: string): Promise<void> {
  const value = 'v'.repeat(200);
  const batches = Array.from({ length: PRELOAD_KEYS / BATCH_OPS }, (_, batch) => batch);
  await runBounded(batches, 2, async (batch) => {
    const ops = Array.from({ length: BATCH_OPS }, (_, index) => ({
      op: 'put',
      key: `pre-${String(batch * BATCH_OPS + index).padStart(6, '0')}`,
      value,
    }));
    const answer = await postJson(`${url}/batch`, { ops }, { timeoutMs: 30_000 });
    assert.equal(answer.status, 200, answer.text);
    const results = (answer.body as { ops: { key: string; version: string }[] }).ops;
    for (const result of results) {
      ledger.record(result.key, value, false, result.version);
      preloaded.push(result.key);
    }
  });
}

/** The version each key has in a backup file, and its integrity check. */
function readBackup(file: string): { integrity: string; versions: Map<string, string> } {
  const db = new Database(file, { readonly: true });
  try {
    const integrity = String(db.pragma('integrity_check', { simple: true }));
    const rows = db.prepare('SELECT key, ts, node FROM kv').all() as {
      key: string;
      ts: number;
      node: string;
    }[];
    const versions = new Map(
      rows.map((row) => [row.key, formatVersion({ timestamp: row.ts, nodeId: row.node })]),
    );
    return { integrity, versions };
  } finally {
    db.close();
  }
}

test('a backup under a steady write load passes integrity_check and holds every write acknowledged before it began', async () => {
  await withLogsOnFailure(cluster, async () => {
    const source = cluster.node(0);
    await preload(source.url);
    const acked: { key: string; version: string }[] = [];
    let writing = true;
    const writers = Array.from({ length: WRITERS }, async (_, writer) => {
      for (let n = 0; writing; n += 1) {
        const key = `load-${writer}-${n}`;
        acked.push({ key, version: await putKey(source.url, key, { writer, n }, ledger) });
      }
    });
    try {
      await waitFor(() => acked.length >= 200, { timeoutMs: 30_000, message: 'writes flowing' });
      const ackedBefore = [...acked];
      const run = await runPeerkv(['backup', '--node', source.url, '--out', backupFile], CLI_MS);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr + run.stdout, /backup of node [0-9a-f]{16}/);
      const afterBackup = acked.length;
      await waitFor(() => acked.length >= afterBackup + 50, {
        timeoutMs: 30_000,
        message: 'writes kept being acknowledged after the backup',
      });
      const { integrity, versions } = readBackup(backupFile);
      assert.equal(integrity, 'ok');
      for (const key of preloaded) assert.equal(versions.get(key), ledger.versionOf(key), key);
      for (const { key, version } of ackedBefore) assert.equal(versions.get(key), version, key);
      assert.ok(!fs.existsSync(`${backupFile}.partial`), 'the partial file took the name');
    } finally {
      writing = false;
      await Promise.all(writers);
    }
  });
});

test('the backup restored as a node converges; keys deleted or rewritten after it stay deleted or rewritten', async () => {
  await withLogsOnFailure(cluster, async () => {
    const [a, b, c] = [cluster.node(0), cluster.node(1), cluster.node(2)];
    const deleted = preloaded.filter((_, index) => index % 100 === 1);
    const rewritten = preloaded.filter((_, index) => index % 100 === 2);
    await runBounded(deleted, 8, async (key) => void (await deleteKey(a.url, key, ledger)));
    await runBounded(rewritten, 8, async (key) => void (await putKey(b.url, key, 'newer', ledger)));
    const added = Array.from({ length: 200 }, (_, index) => `after-${index}`);
    await runBounded(added, 8, async (key) => void (await putKey(a.url, key, 'new', ledger)));
    await waitSameHash([a, b, c], CONVERGE_MS);
    const idsBefore = await Promise.all([a, b, c].map((node) => pingNodeId(node.url)));

    await c.stop();
    const refused = await runPeerkv(['restore', backupFile, '--data-dir', c.dataDir], CLI_MS);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /^peerkv: --data-dir .* is not empty .*--force[^\n]*\n$/);
    const restored = await runPeerkv(
      ['restore', backupFile, '--data-dir', c.dataDir, '--force'],
      CLI_MS,
    );
    assert.equal(restored.code, 0, restored.stderr);
    const newId = /new node id ([0-9a-f]{16}) \(the backup was of ([0-9a-f]{16})\)/.exec(
      restored.stdout,
    );
    assert.ok(newId, restored.stdout);
    assert.equal(newId[2], idsBefore[0], 'the backup was of node 0');
    await c.start();

    assert.equal(await pingNodeId(c.url), newId[1], 'node 2 runs under the new id');
    assert.ok(!idsBefore.includes(newId[1]!), 'an id no live node has');
    await waitSameHash([a, b, c], CONVERGE_MS, 'the restored node converges with the others');
    await assertContent([a, b, c], ledger.expected());
    for (const key of deleted.slice(0, 20)) {
      const answer = await getJson(`${c.url}/kv/${key}`);
      assert.equal(answer.status, 404, `${key} stays deleted on the restored node`);
    }
    for (const key of rewritten.slice(0, 20)) {
      const answer = await getJson(`${c.url}/kv/${key}`);
      assert.equal(
        (answer.body as { value: unknown }).value,
        'newer',
        `${key} keeps the newer write`,
      );
    }

    const version = await putKey(c.url, 'written-on-the-restored-node', 1, ledger);
    assert.ok(version.endsWith(`-${newId[1]}`), 'its writes carry its new id');
    await waitSameHash([a, b, c], CONVERGE_MS);
    await assertContent([a, b, c], ledger.expected());
  });
});
