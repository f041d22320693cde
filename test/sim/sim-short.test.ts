// The simulator as part of npm test: a few hundred seeded schedules (3 nodes, virtual time, an
// in-memory network with drops, duplicates, cuts and delays, crashes, clock jumps and
// membership changes), each checked with the chaos checker's checks and the step invariants;
// a hundred more with a short --removed-member-hold, so removals are closed during the run
// (src/tombstones/removed-members.ts) and closed nodes retired at the end; and a replay of one
// seed that must give the same trace, byte for byte. A failing seed is named with its replay
// command.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { defaultRootDir, type SimResult, simulate } from './simulate.ts';

const SEEDS = 200;
const CLOSING_SEEDS = 100;
const FIRST_SEED = 1;
const rootDir = defaultRootDir();
const options = { nodes: 3, durationMs: 30_000, convergeMsMax: 120_000, rootDir };

after(() => rmSync(rootDir, { recursive: true, force: true }));

function describeFailure(result: SimResult): string {
  const violations = result.violations.map((v) => `  ${v.check}: ${v.message}`).join('\n');
  const tail = result.trace.slice(-60).join('\n');
  return `seed ${result.seed} failed (replay: npm run sim -- --seed ${result.seed} --duration 30):\n${violations}\nlast trace lines:\n${tail}`;
}

describe('simulated schedules', () => {
  test(`${SEEDS} seeds pass every check`, async () => {
    let faults = 0;
    let ops = 0;
    for (let seed = FIRST_SEED; seed < FIRST_SEED + SEEDS; seed += 1) {
      const result = await simulate({ ...options, seed });
      assert.equal(result.violations.length, 0, describeFailure(result));
      assert.ok(result.convergedAfterMs !== undefined, `seed ${seed} converged`);
      faults += result.faults;
      ops += result.ops;
    }
    assert.ok(ops > SEEDS * 10 && faults > SEEDS, 'the schedules did ops and faults');
  });

  test(`${CLOSING_SEEDS} seeds with removals closed during the run pass every check`, async () => {
    let closed = 0;
    for (let seed = FIRST_SEED; seed < FIRST_SEED + CLOSING_SEEDS; seed += 1) {
      const result = await simulate({ ...options, seed, removedMemberHoldMs: 10_000 });
      assert.equal(
        result.violations.length,
        0,
        `${describeFailure(result)}\n(with --removed-member-hold-ms 10000)`,
      );
      closed += result.trace.filter((line) => line.includes('closed on every member')).length;
    }
    assert.ok(closed > CLOSING_SEEDS / 10, `removals were closed (${closed} times)`);
  });

  test('a seed replays with the same trace, byte for byte', async () => {
    const first = await simulate({ ...options, seed: 4242 });
    const second = await simulate({ ...options, seed: 4242 });
    assert.ok(first.trace.length > 50, 'the trace has content');
    assert.ok(
      first.trace.some((line) => line.includes('FAULT')),
      'the trace shows faults',
    );
    assert.equal(second.trace.join('\n'), first.trace.join('\n'));
    assert.deepEqual(second.violations, first.violations);
    assert.equal(second.events, first.events);
  });

  test('different seeds draw different schedules', async () => {
    const a = await simulate({ ...options, seed: 7 });
    const b = await simulate({ ...options, seed: 8 });
    assert.notEqual(a.trace.join('\n'), b.trace.join('\n'));
  });
});
