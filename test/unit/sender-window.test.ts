// Checks that a sender sends exactly the node's own changes, in order and with an atomic batch
// whole, when they sit among many more changes replicated from other nodes (which SQLite skips
// in windows of seqs: replicationLimits.scanSeqsInline on the event loop, scanSeqsWorker in a
// pool worker), and that its cursor still reaches the node's sequence; on the event loop
// (small backlogs, the sender told after every commit) and through the pool (one long backlog).
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { createInlineStorePool } from '../../src/inline-pool.ts';
import { replicationLimits } from '../../src/limits.ts';
import type { PeerSender } from '../../src/replication/peer-sender.ts';
import type { KvStore } from '../../src/store/kv-store.ts';
import type { Entry, Mutation } from '../../src/store/types.ts';
import { applyRemote, openStore, putLocal, senderToFake, TempDirs } from './store-fixture.ts';

const dirs = new TempDirs();
after(() => dirs.remove());

const PEER = '00000000000000aa';
const OTHER = '00000000000000bb';
let foreignSerial = 0;

/** `count` entries written by another node, replicated to this one. */
function foreign(store: KvStore, count: number): void {
  const entries: Entry[] = [];
  for (let index = 0; index < count; index += 1) {
    foreignSerial += 1;
    const timestamp = (Date.now() - 60_000) * 1024 + foreignSerial;
    entries.push({
      key: `f${foreignSerial}`,
      valueJson: '1',
      version: { timestamp, nodeId: OTHER },
    });
  }
  applyRemote(store, entries, OTHER);
}

/** An atomic batch of our own (a client's POST /batch): it takes consecutive seqs. */
function ownBatch(store: KvStore, keys: readonly string[]): void {
  const mutations: Mutation[] = keys.map((key) => ({ kind: 'local', key, valueJson: '2' }));
  store.applyMutations(mutations, [{ start: 0, count: keys.length }]);
}

interface Peer {
  readonly bodies: string[][];
  readonly sender: PeerSender;
}

function peerOf(store: KvStore, withPool: boolean): Peer {
  const bodies: string[][] = [];
  const pool = withPool ? createInlineStorePool() : undefined;
  store.setPeerCursor('http://127.0.0.1:1', PEER, 0);
  const sender = senderToFake(
    store,
    async (_method, _path, body) => {
      const parsed = JSON.parse(body!) as { entries: { key: string }[] };
      bodies.push(parsed.entries.map((entry) => entry.key));
      return { json: {}, bytes: 0, headers: {} };
    },
    pool,
  );
  return { bodies, sender };
}

async function drained(sender: PeerSender, store: KvStore): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (sender.pending > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.equal(sender.cursor, store.seq, 'the cursor reached the sequence');
}

const OWN = ['a', 'b1', 'b2', 'b3', 'b4', 'b5', 'c', 'z'];

/** Our changes among others', arranged so the batch b1..b5 spans the end of the first window. */
async function writeMixed(store: KvStore, step: () => Promise<void>): Promise<void> {
  putLocal(store, 'a', '1');
  await step();
  // a is seq 1: others take seqs 2 .. window-1, the batch starts at the window's last seq.
  foreign(store, replicationLimits.scanSeqsInline - 2);
  await step();
  ownBatch(store, ['b1', 'b2', 'b3', 'b4', 'b5']);
  await step();
  for (let round = 0; round < 5; round += 1) {
    foreign(store, 2_000);
    await step();
  }
  // One read's window holds none of ours: the next window's c must still be sent.
  foreign(store, replicationLimits.scanSeqsInline + 500);
  putLocal(store, 'c', '3');
  await step();
  for (let round = 0; round < 3; round += 1) {
    foreign(store, replicationLimits.scanSeqsInline);
    await step();
  }
  putLocal(store, 'z', '4');
}

describe('a sender among changes replicated from other nodes', () => {
  test('on the event loop, told after every commit: only ours, in order, the batch whole', async () => {
    const store = openStore(dirs.newDir());
    const { bodies, sender } = peerOf(store, false);
    sender.activate(PEER);
    await writeMixed(store, async () => {
      sender.notify();
      await drained(sender, store);
    });
    sender.notify();
    await drained(sender, store);
    assert.deepEqual(bodies.flat(), OWN);
    assert.ok(
      bodies.some((keys) => keys.join() === 'b1,b2,b3,b4,b5'),
      `the batch in one body: ${JSON.stringify(bodies)}`,
    );
    sender.stop();
    store.close();
  });

  test('through the pool, one backlog of ~26,000 changes: only ours, in order', async () => {
    const store = openStore(dirs.newDir());
    const { bodies, sender } = peerOf(store, true);
    await writeMixed(store, async () => {});
    assert.ok(store.seq >= replicationLimits.workerBacklogMin * 4);
    sender.activate(PEER);
    await drained(sender, store);
    assert.deepEqual(bodies.flat(), OWN);
    assert.ok(bodies.some((keys) => keys.join().includes('b1,b2,b3,b4,b5')));
    sender.stop();
    store.close();
  });
});
