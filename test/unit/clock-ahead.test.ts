// Checks that a version from the future cannot drag a node's clock with it (issue 9, point 10):
// the hybrid clock caps how far an observed timestamp moves it, a persisted clock far ahead is
// not followed after a restart (while what the node issued itself is), and a write to a key that holds a far-future version still
// orders after it; on real KvStore files in a temp dir and a fake wall clock.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { HybridClock, LOGICAL_PER_MS, timestampToMs } from '../../src/clock.ts';
import { KvStore } from '../../src/store/kv-store.ts';
import { compareVersions } from '../../src/version.ts';
import { applyRemote, putLocal, TempDirs } from './store-fixture.ts';

const dirs = new TempDirs();
after(() => dirs.remove());

const WALL_MS = 1_800_000_000_000;
const DAY_MS = 86_400_000;
const AHEAD_MS_MAX = 10_000;
const clockAt = (wallMs: number) =>
  new HybridClock(
    () => wallMs,
    0,
    () => AHEAD_MS_MAX,
  );

describe('a clock that observes versions from the future', () => {
  test('observe() moves the clock at most aheadMsMax past the wall clock', () => {
    const clock = clockAt(WALL_MS);
    clock.observe((WALL_MS + 5_000) * LOGICAL_PER_MS);
    assert.equal(timestampToMs(clock.last), WALL_MS + 5_000, 'within the bound: followed');
    clock.observe((WALL_MS + 23 * 3_600_000) * LOGICAL_PER_MS);
    assert.ok(timestampToMs(clock.last) <= WALL_MS + AHEAD_MS_MAX, 'beyond it: capped');
    assert.ok(clock.aheadOfWallMs() <= AHEAD_MS_MAX);
    assert.equal(clock.timestampMax(), (WALL_MS + AHEAD_MS_MAX + 1) * LOGICAL_PER_MS - 1);
  });

  test("a timestamp a peer's clock reached stays acceptable, up to a day ahead", () => {
    let vouched = 0;
    const clock = new HybridClock(
      () => WALL_MS,
      0,
      () => AHEAD_MS_MAX,
      () => vouched,
    );
    const bound = (WALL_MS + AHEAD_MS_MAX + 1) * LOGICAL_PER_MS - 1;
    assert.equal(clock.timestampMax(), bound, 'no peer vouches: the wall clock plus the lead');
    vouched = (WALL_MS + 60_000) * LOGICAL_PER_MS;
    assert.equal(clock.timestampMax(), vouched, "a peer's clock a minute ahead: up to it");
    clock.observe(vouched);
    assert.equal(clock.last, vouched, 'observed up to the vouched timestamp');
    vouched = (WALL_MS + 2 * DAY_MS) * LOGICAL_PER_MS;
    assert.equal(
      clock.timestampMax(),
      (WALL_MS + DAY_MS + 1) * LOGICAL_PER_MS - 1,
      'never more than a day ahead',
    );
  });

  test('a persisted clock a day ahead is not followed after a restart', () => {
    const dir = dirs.newDir();
    new KvStore(dir, 'normal', clockAt(WALL_MS)).close();
    const db = new Database(`${dir}/peerkv.db`);
    db.prepare("UPDATE meta SET value = ? WHERE name = 'clock'").run(
      String((WALL_MS + DAY_MS - 60_000) * LOGICAL_PER_MS),
    );
    db.close();
    const store = new KvStore(dir, 'normal', clockAt(WALL_MS));
    const written = putLocal(store, 'k', '1');
    assert.ok(
      timestampToMs(written.version.timestamp) - WALL_MS <= AHEAD_MS_MAX + 1,
      `stamped ${timestampToMs(written.version.timestamp) - WALL_MS} ms ahead`,
    );
    store.close();
  });

  test('after a restart with the wall clock gone back, no version this node issued is reused', () => {
    const dir = dirs.newDir();
    const before = new KvStore(dir, 'normal', clockAt(WALL_MS));
    const issued = [putLocal(before, 'a', '1'), putLocal(before, 'b', '2')];
    before.close();
    // Restarted 42 s behind (beyond the 10 s the cap allows an observed clock).
    const after = new KvStore(dir, 'normal', clockAt(WALL_MS - 42_000));
    const next = putLocal(after, 'c', '3');
    for (const old of issued) {
      assert.ok(compareVersions(next.version, old.version) > 0, 'the new version orders after');
    }
    after.close();
    // A file written before clock_issued existed: the node's own rows give the floor.
    const db = new Database(`${dir}/peerkv.db`);
    db.prepare("DELETE FROM meta WHERE name = 'clock_issued'").run();
    db.close();
    const legacy = new KvStore(dir, 'normal', clockAt(WALL_MS - 42_000));
    assert.ok(compareVersions(putLocal(legacy, 'd', '4').version, next.version) > 0);
    legacy.close();
  });

  test('a key holding a far-future version is still overwritten by a later local write', () => {
    const store = new KvStore(dirs.newDir(), 'normal', clockAt(WALL_MS));
    const future = {
      timestamp: (WALL_MS + 23 * 3_600_000) * LOGICAL_PER_MS,
      nodeId: 'ffffffffffffff00',
    };
    applyRemote(store, [{ key: 'stuck', valueJson: '"old"', version: future }]);
    const overwrite = putLocal(store, 'stuck', '"new"');
    assert.ok(compareVersions(overwrite.version, future) > 0, 'the local write wins');
    assert.equal(store.get('stuck')?.valueJson, '"new"');
    const other = putLocal(store, 'other', '1');
    assert.ok(
      timestampToMs(other.version.timestamp) - WALL_MS <= AHEAD_MS_MAX + 1,
      'other keys are stamped near wall time',
    );
    store.close();
  });

  test('versions that order after far-future ones are never issued twice (sim seed 200036)', () => {
    // Two keys hold versions at the same far-future timestamp (from two nodes); the clock is
    // capped below it. Each overwrite orders after it, and each gets its own timestamp; once
    // the wall clock reaches them, now() steps over them — also after a restart.
    let wallMs = WALL_MS;
    const clock = () =>
      new HybridClock(
        () => wallMs,
        0,
        () => AHEAD_MS_MAX,
      );
    const dir = dirs.newDir();
    const store = new KvStore(dir, 'normal', clock());
    const futureMs = WALL_MS + 60_000;
    const future = (nodeId: string) => ({ timestamp: futureMs * LOGICAL_PER_MS, nodeId });
    applyRemote(store, [
      { key: 'x', valueJson: '1', version: future('ffffffffffffff00') },
      { key: 'y', valueJson: '2', version: future('ffffffffffffff01') },
    ]);
    const issued = [putLocal(store, 'x', '"x"'), putLocal(store, 'y', '"y"')].map(
      (result) => result.version.timestamp,
    );
    assert.ok(issued.every((timestamp) => timestamp > futureMs * LOGICAL_PER_MS));
    assert.notEqual(issued[0], issued[1], 'two overwrites, two timestamps');
    assert.ok(
      timestampToMs(putLocal(store, 'near', '1').version.timestamp) - WALL_MS <= AHEAD_MS_MAX + 1,
      'other keys are still stamped near wall time',
    );
    store.close();
    // Restarted when the wall clock has reached the far-future time.
    wallMs = futureMs;
    const reopened = new KvStore(dir, 'normal', clock());
    const later = Array.from({ length: 5 }, (_, i) => putLocal(reopened, `z${i}`, '1'));
    for (const result of later) {
      assert.ok(!issued.includes(result.version.timestamp), 'no timestamp issued twice');
    }
    reopened.close();
  });
});
