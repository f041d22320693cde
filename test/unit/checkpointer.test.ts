// The WAL checkpointer: when it checkpoints, where, and that it keeps a real store's WAL bounded.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { HybridClock } from '../../src/clock.ts';
import { createStorePool } from '../../src/pool.ts';
import {
  Checkpointer,
  type CheckpointPool,
  type CheckpointResult,
  type CheckpointStore,
  type CheckpointThread,
} from '../../src/store/checkpointer.ts';
import { KvStore } from '../../src/store/kv-store.ts';
import { TempDirs } from './store-fixture.ts';

const dirs = new TempDirs();
after(() => dirs.remove());

/** A store whose WAL holds `frames` pages, all copied by each checkpoint. */
class FakeStore implements CheckpointStore {
  readonly dbPath = '/nowhere/peerkv.db';
  changes = 0;
  frames = 0;
  nodeCheckpoints = 0;
  diskFull = false;
  /** Frames the node's checkpoint cannot copy (a reader's snapshot pins them). */
  pinned = 0;

  changesMade(): number {
    return this.changes;
  }

  checkpoint(): CheckpointResult {
    this.nodeCheckpoints += 1;
    if (this.diskFull)
      throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    return { busy: false, walFrames: this.frames, checkpointedFrames: this.frames - this.pinned };
  }
}

class FakePool implements CheckpointPool {
  calls = 0;
  fail = false;
  diskFull = false;
  /** Frames the pool's checkpoint leaves uncopied (committed while it ran). */
  left = 0;
  #release: (() => void) | null = null;
  hold = false;

  constructor(readonly store: FakeStore) {}

  async checkpoint(): Promise<CheckpointResult> {
    this.calls += 1;
    if (this.hold) await new Promise<void>((resolve) => (this.#release = resolve));
    if (this.fail) throw new Error('pool closed');
    if (this.diskFull)
      throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    const walFrames = this.store.frames;
    return { busy: false, walFrames, checkpointedFrames: walFrames - this.left };
  }

  release(): void {
    this.#release?.();
  }
}

function checkpointerOver(
  tailFrames = 1_000,
  holdWrites?: () => () => void,
  inlineChangesMax?: number,
) {
  const store = new FakeStore();
  const pool = new FakePool(store);
  const threads: CheckpointThread[] = [];
  const warnings: string[] = [];
  const log = { warn: (_: unknown, message: string) => warnings.push(message) };
  const checkpointer = new Checkpointer(store, pool, {
    intervalMs: 100,
    tailFrames,
    holdMsMax: 50,
    ...(holdWrites ? { holdWrites } : {}),
    ...(inlineChangesMax === undefined ? {} : { inlineChangesMax }),
    onCheckpoint: (thread) => threads.push(thread),
    log: log as never,
  });
  return { store, pool, checkpointer, threads, warnings };
}

describe('Checkpointer', () => {
  it('checkpoints in the pool after changes, and not again until something changes', async () => {
    const { store, pool, checkpointer, threads } = checkpointerOver();
    store.frames = 10;
    store.changes = 5;
    await checkpointer.round();
    await checkpointer.round();
    await checkpointer.round();
    assert.equal(pool.calls, 1, 'one checkpoint for one set of changes');
    store.changes = 6;
    store.frames = 20;
    await checkpointer.round();
    assert.equal(pool.calls, 2);
    assert.deepEqual(threads, ['pool', 'pool']);
    assert.equal(store.nodeCheckpoints, 0, 'a short WAL is left to the pool');
  });

  it("copies a few changes on the node's connection, more in the pool", async () => {
    const { store, pool, checkpointer, threads } = checkpointerOver(1_000, undefined, 16);
    store.frames = 5;
    store.changes = 100;
    await checkpointer.round();
    assert.deepEqual(threads, ['pool'], 'the first checkpoint: nothing known of the WAL');
    store.changes = 116;
    store.frames = 9;
    await checkpointer.round();
    assert.deepEqual(threads, ['pool', 'node'], '16 changes: the node copies them');
    assert.equal(pool.calls, 1);
    store.changes = 133;
    await checkpointer.round();
    assert.deepEqual(threads, ['pool', 'node', 'pool'], '17 changes: the pool copies them');
    store.changes = 134;
    await checkpointer.round();
    assert.deepEqual(threads, ['pool', 'node', 'pool', 'node']);
  });

  it('a few changes after a checkpoint that left frames behind still go to the pool', async () => {
    const { store, pool, checkpointer, threads } = checkpointerOver(1_000, undefined, 16);
    store.frames = 800;
    store.changes = 10;
    pool.left = 500;
    await checkpointer.round();
    store.changes = 11;
    await checkpointer.round();
    assert.deepEqual(threads, ['pool', 'pool'], 'not settled: the node would copy the 500 left');
    pool.left = 0;
    await checkpointer.round();
    store.changes = 12;
    await checkpointer.round();
    assert.deepEqual(threads, ['pool', 'pool', 'pool', 'node'], 'settled: now the node copies');
  });

  it('checkpoints again while the last one left frames behind, even without new changes', async () => {
    const { store, pool, checkpointer } = checkpointerOver();
    store.frames = 300;
    store.changes = 1;
    pool.left = 40;
    await checkpointer.round();
    await checkpointer.round();
    assert.equal(pool.calls, 2, 'not settled: the next round checkpoints');
    pool.left = 0;
    await checkpointer.round();
    await checkpointer.round();
    assert.equal(pool.calls, 3, 'settled and unchanged: nothing to do');
  });

  it("copies the tail on the node's connection once the WAL holds tailFrames pages", async () => {
    const { store, pool, checkpointer, threads } = checkpointerOver(1_000);
    store.changes = 1;
    store.frames = 999;
    pool.left = 100;
    await checkpointer.round();
    assert.equal(store.nodeCheckpoints, 0);
    store.changes = 2;
    store.frames = 1_000;
    await checkpointer.round();
    assert.equal(store.nodeCheckpoints, 1, 'the node copied what the pool left');
    assert.deepEqual(threads, ['pool', 'pool', 'node']);
    await checkpointer.round();
    assert.equal(pool.calls, 2, "the node's checkpoint copied every frame: settled");
  });

  it("falls back to the node's connection when the pool fails, and says so once", async () => {
    const { store, pool, checkpointer, threads, warnings } = checkpointerOver();
    pool.fail = true;
    store.frames = 50;
    for (let change = 1; change <= 3; change += 1) {
      store.changes = change;
      await checkpointer.round();
    }
    assert.equal(store.nodeCheckpoints, 3);
    assert.deepEqual(threads, ['node', 'node', 'node']);
    assert.equal(warnings.length, 1, 'one warning for a run of failures');
  });

  it('a full disk fails the checkpoint, not the node: warned once, tried again every round', async () => {
    const { store, pool, checkpointer, warnings } = checkpointerOver();
    store.frames = 50;
    store.changes = 1;
    pool.diskFull = true;
    await checkpointer.round();
    await checkpointer.round();
    assert.equal(pool.calls, 2, 'not settled: tried again without new changes');
    assert.equal(
      store.nodeCheckpoints,
      0,
      "SQLite's failure is not the pool's: not repeated on the node",
    );
    pool.fail = true;
    store.diskFull = true;
    await checkpointer.round();
    assert.equal(store.nodeCheckpoints, 1);
    assert.equal(warnings.filter((w) => w.startsWith('checkpoint failed')).length, 1);
    pool.fail = false;
    pool.diskFull = false;
    store.diskFull = false;
    await checkpointer.round();
    await checkpointer.round();
    assert.equal(pool.calls, 4, 'space is back: settled again, then idle');
  });

  it('holds the write queue through the checkpoint of a long WAL, and releases the hold after holdMsMax at the latest', async () => {
    let holds = 0;
    let released = 0;
    const holdWrites = () => {
      holds += 1;
      return () => {
        released += 1;
      };
    };
    const { store, pool, checkpointer } = checkpointerOver(1_000, holdWrites);
    store.frames = 2_000;
    store.changes = 1;
    await checkpointer.round();
    assert.equal(holds, 0, 'the WAL length is known only after a first checkpoint');
    store.changes = 2;
    await checkpointer.round();
    assert.equal(holds, 1);
    assert.equal(released, 1);
    assert.equal(store.nodeCheckpoints, 0, 'held: the pool copied every frame');
    store.changes = 3;
    pool.hold = true;
    const running = checkpointer.round();
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.equal(
      released,
      2,
      'a checkpoint stuck in the pool queue does not hold writes past 50 ms',
    );
    pool.left = 10;
    pool.release();
    await running;
    assert.equal(released, 2, 'released once');
    assert.equal(store.nodeCheckpoints, 1, 'frames left despite the hold: the node copies them');
  });

  it('after a hold that could not copy everything (a reader pins frames), holds again only when the WAL grew by tailFrames', async () => {
    let holds = 0;
    const { store, pool, checkpointer } = checkpointerOver(1_000, () => {
      holds += 1;
      return () => {};
    });
    store.frames = 1_500;
    store.changes = 1;
    await checkpointer.round(); // learns the WAL length
    pool.left = 700;
    store.pinned = 700; // the node's copy of the rest cannot take them either
    store.changes = 2;
    await checkpointer.round();
    assert.equal(holds, 1);
    for (let change = 3; change < 8; change += 1) {
      store.changes = change;
      store.frames += 100;
      await checkpointer.round();
    }
    assert.equal(holds, 1, 'the WAL grew by 500 frames only: no hold');
    store.frames = 2_600;
    store.changes = 9;
    await checkpointer.round(); // learns the length: 2,600
    assert.equal(holds, 1);
    store.changes = 10;
    await checkpointer.round();
    assert.equal(holds, 2, 'grown by tailFrames: held again');
    pool.left = 0;
    store.pinned = 0;
    store.changes = 11;
    await checkpointer.round();
    store.frames = 1_200;
    store.changes = 12;
    await checkpointer.round();
    assert.equal(holds, 3, 'once settled (without a hold), a WAL of tailFrames is held again');
  });

  it('runs one checkpoint at a time, and close() waits for it', async () => {
    const { store, pool, checkpointer } = checkpointerOver();
    store.changes = 1;
    store.frames = 10;
    pool.hold = true;
    const first = checkpointer.round();
    store.changes = 2;
    const second = checkpointer.round();
    assert.equal(first, second, 'a round during a checkpoint joins it');
    assert.equal(pool.calls, 1);
    let closed = false;
    const closing = checkpointer.close().then(() => {
      closed = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(closed, false, 'close() waits for the running checkpoint');
    pool.release();
    await closing;
    store.changes = 3;
    await checkpointer.round();
    assert.equal(pool.calls, 1, 'no round after close');
  });
});

describe('Checkpointer over a real store', () => {
  const value = JSON.stringify('v'.repeat(200));
  const walBound = 12 * 1024 * 1024;
  let batches = 0;

  function writeBatch(store: KvStore): void {
    batches += 1;
    store.applyMutations(
      Array.from({ length: 100 }, (_, index) => ({
        kind: 'local' as const,
        key: `k-${batches}-${index}`,
        valueJson: value,
      })),
    );
  }

  function openStore(): KvStore {
    return new KvStore(dirs.newDir(), 'full', new HybridClock(Date.now), undefined, {
      autoCheckpoint: false,
    });
  }

  /** Writes 120 batches, a turn apart, with a checkpoint round every other turn. */
  async function walAfter(store: KvStore, checkpointer: Checkpointer | null): Promise<number> {
    for (let turn = 0; turn < 120; turn += 1) {
      writeBatch(store);
      if (turn % 2 === 0) void checkpointer?.round();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await checkpointer?.round();
    return statSync(`${store.dbPath}-wal`).size;
  }

  it("keeps the WAL of a store without SQLite's own checkpoints bounded under steady writes, and loses nothing", async (t) => {
    const store = openStore();
    const pool = createStorePool();
    const threads: CheckpointThread[] = [];
    const checkpointer = new Checkpointer(store, pool, {
      intervalMs: 100,
      tailFrames: 1_000,
      holdMsMax: 50,
      onCheckpoint: (thread) => threads.push(thread),
    });
    try {
      writeBatch(store);
      await checkpointer.round(); // the pool thread has started: the loop below runs beside it
      const walBytes = await walAfter(store, checkpointer);
      t.diagnostic(`WAL ${walBytes} bytes; checkpoints: ${threads.join(',')}`);
      assert.ok(walBytes < walBound, `WAL ${walBytes} bytes`);
      assert.ok(threads.includes('pool'), threads.join(','));
    } finally {
      await checkpointer.close();
      await pool.close();
    }
    const rows = store.changesSince(0, 1_000_000).length;
    store.close();
    assert.equal(rows, 121 * 100);
    const reader = new Database(store.dbPath, { readonly: true });
    try {
      assert.equal(reader.prepare('SELECT count(*) FROM kv').pluck().get(), rows);
    } finally {
      reader.close();
    }
  });

  it('the control: without it, the same writes grow the WAL past that bound', async (t) => {
    const store = openStore();
    writeBatch(store);
    const walBytes = await walAfter(store, null);
    store.close();
    t.diagnostic(`WAL ${walBytes} bytes`);
    assert.ok(walBytes >= walBound, `no checkpoints: WAL ${walBytes} bytes`);
  });
});
