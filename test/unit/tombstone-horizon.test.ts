// Checks the tombstone horizon: the stable-time arithmetic over members' acknowledgement reports
// (a member without a report holds it at 0; a peer's horizon is taken only when we hold everything
// below it); the store's removal below the horizon (digest equals a recount, the change sequence is
// never reused after the last rows went, across a reopen) and its refusals (an older live entry
// it does not hold is refused as behind-horizon, an older tombstone dropped quietly); and the
// collector's own report (a jumped cursor or a refused entry holds a peer's acknowledgement back).
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { LOGICAL_PER_MS } from '../../src/clock.ts';
import { BucketDigest, bucketOf, entryHash } from '../../src/store/digest.ts';
import { type CollectorPeer, TombstoneCollector } from '../../src/tombstones/collector.ts';
import {
  type AckReport,
  completeBelow,
  formatAcked,
  nextHorizon,
  parseAckReport,
  stableBelow,
} from '../../src/tombstones/stability.ts';
import { formatVersion } from '../../src/version.ts';
import { applyRemote, openStore, putLocal, TempDirs } from './store-fixture.ts';

const dirs = new TempDirs();
after(() => dirs.remove());

const A = '000000000000000a';
const B = '000000000000000b';
const C = '000000000000000c';
const report = (acked: Record<string, number>, horizon = 0): AckReport => ({
  horizon,
  acked: new Map(Object.entries(acked)),
});

describe('stable time', () => {
  test('is the lowest acknowledgement over every pair of members', () => {
    const reports = new Map([
      [A, report({ [A]: 900, [B]: 500, [C]: 700 })],
      [B, report({ [A]: 800, [B]: 900, [C]: 600 })],
      [C, report({ [A]: 650, [B]: 750, [C]: 900 })],
    ]);
    assert.equal(completeBelow(A, [A, B, C], reports), 650);
    assert.equal(completeBelow(B, [A, B, C], reports), 500);
    assert.equal(stableBelow([A, B, C], reports), 500);
  });

  test('a member without a report, or missing from one, holds it at 0', () => {
    const reports = new Map([
      [A, report({ [A]: 900, [B]: 800 })],
      [B, report({ [A]: 800, [B]: 900 })],
    ]);
    assert.equal(stableBelow([A, B], reports), 800);
    assert.equal(stableBelow([A, B, C], reports), 0, 'C has no report');
    assert.equal(stableBelow([A, B, 'unknown'], reports), 0, 'a member not yet identified');
  });

  test('the horizon: grace-bound, stepped, never lower, a peer’s taken only when complete', () => {
    const nowMs = 1_000_000;
    const graceMs = 10_000; // step 1 s
    const high = (ms: number) => ms * LOGICAL_PER_MS;
    const reports = new Map([
      [A, report({ [A]: high(999_000), [B]: high(999_000) })],
      [B, report({ [A]: high(999_000), [B]: high(999_000) })],
    ]);
    const input = { self: A, members: [A, B], reports, wallMs: nowMs, graceMs };
    assert.equal(nextHorizon({ ...input, current: 0 }), high(990_000), 'now minus the grace');
    assert.equal(nextHorizon({ ...input, current: high(998_000) }), high(998_000), 'never lower');
    // B's horizon is above the grace bound but below what A holds: A may take it.
    const complete = new Map(reports);
    complete.set(B, report({ [A]: high(999_000), [B]: high(999_000) }, high(996_000)));
    assert.equal(nextHorizon({ ...input, current: 0, reports: complete }), high(996_000));
    // A peer's horizon above what we hold is not taken.
    const ahead = new Map(reports);
    ahead.set(B, report({ [A]: high(900_000), [B]: high(999_000) }, high(950_000)));
    assert.equal(nextHorizon({ ...input, current: 0, reports: ahead }), high(900_000));
  });

  test('reports round-trip through their header; malformed ones are refused', () => {
    const acked = new Map([
      [A, 12],
      [B, 34],
    ]);
    assert.deepEqual(parseAckReport('7', formatAcked(acked)), {
      horizon: 7,
      acked,
      covered: new Map(),
    });
    assert.equal(parseAckReport('x', formatAcked(acked)), null);
    assert.equal(parseAckReport('7', 'nothex=1'), null);
    assert.equal(parseAckReport('7', `${A}=-1`), null);
    assert.equal(parseAckReport(undefined, ''), null);
  });
});

describe('removal below the horizon', () => {
  test('removes old tombstones only, keeps the digest exact and never reuses a seq', () => {
    const dir = dirs.newDir();
    let wall = 1_000_000;
    const store = openStore(dir, () => wall);
    for (let i = 0; i < 50; i += 1) putLocal(store, `k${i}`, `${i}`);
    for (let i = 0; i < 30; i += 1) putLocal(store, `k${i}`, null);
    wall += 60_000;
    putLocal(store, 'k49', null); // a newer tombstone, above the horizon below
    const seqBefore = store.seq;
    assert.equal(store.deadRows, 31);
    assert.ok(store.raiseHorizon((wall - 30_000) * LOGICAL_PER_MS));
    assert.equal(store.removeBelowHorizon(1_000), 30);
    assert.equal(store.deadRows, 1);
    assert.equal(store.get('k0'), undefined);
    assert.equal(store.get('k49')?.valueJson, null, 'the newer tombstone stays');
    const recount = new BucketDigest();
    for (const row of store.changesSince(0, 1_000)) {
      recount.replace(
        bucketOf(row.key),
        null,
        entryHash(row.key, formatVersion(row.version), row.valueJson),
      );
    }
    assert.equal(store.digest.root(), recount.root());
    assert.equal(store.seq, seqBefore);
    // The last change's row goes too: its seq is still never handed out again, also after a reopen.
    wall += 120_000;
    store.raiseHorizon((wall - 30_000) * LOGICAL_PER_MS);
    assert.equal(store.removeBelowHorizon(1_000), 1);
    store.close();
    const reopened = openStore(dir, () => wall);
    assert.equal(reopened.seq, seqBefore, 'the sequence survives the removal of its last rows');
    assert.equal(reopened.horizon, (wall - 30_000) * LOGICAL_PER_MS, 'the horizon is persisted');
    putLocal(reopened, 'after', '1');
    assert.equal(reopened.seq, seqBefore + 1);
    reopened.close();
  });

  test('an older live entry it does not hold is refused; an older tombstone dropped quietly', () => {
    const store = openStore(dirs.newDir(), () => 2_000_000);
    store.raiseHorizon(1_500_000 * LOGICAL_PER_MS);
    const old = { timestamp: 1_000_000 * LOGICAL_PER_MS, nodeId: B };
    const [live, dead] = applyRemote(store, [
      { key: 'stale', valueJson: '"back from a backup"', version: old },
      { key: 'gone', valueJson: null, version: old },
    ]);
    assert.equal(live?.refused, 'behind-horizon');
    assert.equal(dead?.applied, false);
    assert.equal(dead?.refused, undefined);
    assert.equal(store.get('stale'), undefined);
    assert.equal(store.get('gone'), undefined);
    const fresh = { timestamp: 1_900_000 * LOGICAL_PER_MS, nodeId: B };
    const [newer] = applyRemote(store, [{ key: 'new', valueJson: '1', version: fresh }]);
    assert.equal(newer?.applied, true, 'entries above the horizon merge as ever');
    store.close();
  });
});

describe('the collector’s own report', () => {
  test('a jumped cursor counts 0; a refused entry holds the acknowledgement below its version', () => {
    const store = openStore(dirs.newDir(), () => 3_000_000);
    putLocal(store, 'a', '1');
    const peers: CollectorPeer[] = [
      {
        nodeId: B,
        state: 'up',
        sender: { cursor: store.seq, level: false, refusedLowest: Number.POSITIVE_INFINITY },
        ackReport: null,
        wholeResync: null,
      },
      {
        nodeId: C,
        state: 'up',
        sender: { cursor: store.seq, level: true, refusedLowest: 42 },
        ackReport: null,
        wholeResync: null,
      },
    ];
    const collector = new TombstoneCollector({
      store,
      peers: () => peers,
      graceMs: 1_000,
      intervalMs: 1_000,
      wallMs: () => 3_000_000,
      log: pino({ level: 'silent' }),
    });
    collector.tick();
    const acked = collector.report().acked;
    assert.equal(acked.get(B), 0, 'not level yet');
    assert.equal(acked.get(C), 42, 'held below the refused version');
    assert.ok((acked.get(store.nodeId) ?? 0) > 3_000_000 * LOGICAL_PER_MS - 1, 'own floor');
    assert.equal(collector.stable, 0, 'no reports from the peers yet');
    store.close();
  });
});

describe('expiry under a horizon ahead of this clock', () => {
  test('the sweep expires by the horizon’s wall time when this clock lags it', () => {
    const wallMs = 5_000_000;
    const store = openStore(dirs.newDir(), () => wallMs);
    const [put] = store.applyMutations([
      { kind: 'local', key: 'soon', valueJson: '1', expiresAt: wallMs + 10_000 },
    ]);
    assert.equal(put?.applied, true);
    assert.deepEqual(store.expiredKeys(wallMs, 10), [], 'not expired by this clock');
    // A peer's horizon, taken over, runs 20 s ahead of this clock: every member drops an
    // entry that expired below it when it arrives, so this node must sweep its own copy.
    assert.equal(store.raiseHorizon((wallMs + 20_000) * LOGICAL_PER_MS), true);
    const expired = store.expiredKeys(wallMs, 10);
    assert.deepEqual(
      expired.map((row) => row.key),
      ['soon'],
    );
    const dead = store.deadRows;
    const [swept] = store.applyMutations([
      { kind: 'expire', key: 'soon', version: expired[0]!.version },
    ]);
    assert.equal(swept?.applied, true);
    assert.equal(store.deadRows, dead + 1);
    store.close();
  });

  test('an entry swept after the horizon passed it is removed without the horizon moving', async () => {
    // Chaos seed 31286: the other members dropped such an entry, so a node that kept it until
    // the horizon next rose (it may not for a long time when it runs ahead) never converged.
    const wallMs = 5_000_000;
    const store = openStore(dirs.newDir(), () => wallMs);
    store.applyMutations([
      { kind: 'local', key: 'soon', valueJson: '1', expiresAt: wallMs + 10_000 },
    ]);
    store.raiseHorizon((wallMs + 20_000) * LOGICAL_PER_MS);
    const collector = new TombstoneCollector({
      store,
      peers: () => [],
      graceMs: 1_000,
      intervalMs: 60_000,
      wallMs: () => wallMs,
      log: pino({ level: 'silent' }),
    });
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    collector.tick();
    await turn();
    assert.equal(store.rowsRemoved, 0, 'nothing is dead yet');
    const [expired] = store.expiredKeys(wallMs, 10);
    store.applyMutations([{ kind: 'expire', key: 'soon', version: expired!.version }]);
    const horizon = store.horizon;
    collector.tick();
    await turn();
    assert.equal(store.horizon, horizon, 'the horizon did not move');
    assert.equal(store.rowsRemoved, 1, 'the swept entry went at the next round');
    assert.equal(store.get('soon'), undefined);
    collector.stop();
    store.close();
  });
});
