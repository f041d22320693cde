// Checks that HybridClock is strictly monotonic, never behind the wall clock and orders after what it observes, by driving it with a fake wall clock that stands still, jumps back and jumps ahead, including seeded random sequences.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HybridClock, LOGICAL_PER_MS, TIMESTAMP_MAX, timestampToMs } from '../../src/clock.ts';

/** A wall clock the test moves by hand. */
function fakeWall(startMs: number): { wallMs: () => number; set(ms: number): void } {
  let ms = startMs;
  return {
    wallMs: () => ms,
    set(next: number) {
      ms = next;
    },
  };
}

/** mulberry32: a small seeded PRNG so a failing sequence replays from its seed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

describe('HybridClock', () => {
  test('follows the wall clock when it moves forward', () => {
    const wall = fakeWall(1_000);
    const clock = new HybridClock(wall.wallMs);
    assert.equal(clock.now(), 1_000 * LOGICAL_PER_MS);
    wall.set(1_005);
    assert.equal(clock.now(), 1_005 * LOGICAL_PER_MS);
    assert.equal(timestampToMs(clock.last), 1_005);
  });

  test('counts up strictly while the wall clock stands still', () => {
    const wall = fakeWall(5_000);
    const clock = new HybridClock(wall.wallMs);
    const issued = Array.from({ length: 3_000 }, () => clock.now());
    for (let index = 1; index < issued.length; index += 1) {
      assert.ok(issued[index]! > issued[index - 1]!, `now() #${index} did not increase`);
    }
    // More than LOGICAL_PER_MS calls in one millisecond spill into the next one; order still holds.
    assert.equal(issued.at(-1), 5_000 * LOGICAL_PER_MS + 2_999);
  });

  test('stays monotonic when the wall clock goes backwards', () => {
    const wall = fakeWall(10_000);
    const clock = new HybridClock(wall.wallMs);
    const before = clock.now();
    wall.set(9_000);
    const after = clock.now();
    assert.ok(after > before);
    assert.equal(after, before + 1);
    wall.set(10_001);
    assert.equal(clock.now(), 10_001 * LOGICAL_PER_MS, 'catches up with the wall clock again');
  });

  test('floors a fractional wall clock to whole milliseconds', () => {
    const clock = new HybridClock(() => 1_234.9);
    assert.equal(clock.now(), 1_234 * LOGICAL_PER_MS);
  });

  test('observe() of a future timestamp makes the next now() greater', () => {
    const wall = fakeWall(2_000);
    const clock = new HybridClock(wall.wallMs);
    clock.now();
    const future = 9_999_999 * LOGICAL_PER_MS + 7;
    clock.observe(future);
    assert.equal(clock.last, future);
    assert.equal(clock.now(), future + 1);
  });

  test('observe() of a past timestamp changes nothing', () => {
    const clock = new HybridClock(() => 3_000);
    const issued = clock.now();
    clock.observe(issued - 100);
    clock.observe(0);
    assert.equal(clock.last, issued);
    assert.equal(clock.now(), issued + 1);
  });

  test('starts after the timestamp it is constructed with', () => {
    const restored = 50_000 * LOGICAL_PER_MS + 3;
    const clock = new HybridClock(() => 1_000, restored);
    assert.equal(clock.last, restored);
    assert.equal(clock.now(), restored + 1);
  });

  test('wallMs() reports the wall clock it was given', () => {
    const clock = new HybridClock(() => 42);
    assert.equal(clock.wallMs(), 42);
  });

  test('now() never repeats or leaves the safe-integer range after observing TIMESTAMP_MAX', () => {
    const clock = new HybridClock(() => 1_000);
    clock.observe(TIMESTAMP_MAX - 1);
    let previous = clock.last;
    for (let call = 0; call < 3; call += 1) {
      let issued: number;
      try {
        issued = clock.now();
      } catch {
        // Refusing to issue past TIMESTAMP_MAX is an acceptable fix; repeating a timestamp is not.
        return;
      }
      assert.ok(issued > previous, `call ${call}: ${issued} is not above ${previous}`);
      assert.ok(Number.isSafeInteger(issued), `call ${call}: ${issued} is not a safe integer`);
      previous = issued;
    }
  });

  const seedBase = Number(process.env.PEERKV_TEST_SEED ?? Date.now() % 2 ** 31);
  for (let round = 0; round < 5; round += 1) {
    const seed = seedBase + round;
    test(`random now/observe sequence with a jumping wall clock (seed ${seed})`, () => {
      const random = seededRandom(seed);
      const wall = fakeWall(1_000_000 + Math.floor(random() * 1_000));
      const clock = new HybridClock(wall.wallMs);
      let highest = 0;
      for (let step = 0; step < 2_000; step += 1) {
        const roll = random();
        if (roll < 0.25) {
          // Wall clock: stand still, step forward, or jump back up to a second.
          wall.set(wall.wallMs() + Math.floor((random() - 0.6) * 2_000));
        } else if (roll < 0.45) {
          // A peer's timestamp from up to five seconds behind to five seconds ahead.
          const peerMs = wall.wallMs() + Math.floor((random() - 0.5) * 10_000);
          const observed = peerMs * LOGICAL_PER_MS + Math.floor(random() * LOGICAL_PER_MS);
          clock.observe(observed);
          highest = Math.max(highest, observed);
          assert.equal(clock.last, highest, `seed ${seed} step ${step}: last after observe`);
        } else {
          const issued = clock.now();
          const context = `seed ${seed} step ${step}`;
          assert.ok(issued > highest, `${context}: ${issued} not above ${highest}`);
          assert.ok(
            issued >= wall.wallMs() * LOGICAL_PER_MS,
            `${context}: ${issued} behind the wall clock ${wall.wallMs()}`,
          );
          assert.ok(Number.isSafeInteger(issued), `${context}: not a safe integer`);
          highest = issued;
          assert.equal(clock.last, highest);
        }
      }
    });
  }
});
