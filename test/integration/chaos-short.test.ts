// Goal: short chaos runs (kill -9 and restarts, partitions, clock skew, concurrent writes) end
// with every node converged and no violation of the replication invariants; method: the chaos
// checker's main function in-process with fixed seeds, a few seconds each (long runs: npm run
// chaos -- --seed N --duration 600).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runChaos } from '../chaos/chaos.ts';
import { DEFAULT_OPTIONS } from '../chaos/options.ts';

/** Seeds whose schedules, between them, draw every kind of fault (kill, kill during a resync,
 * restart, clock skew, isolate, 2|1 split, one-way cut, flaky link, heal). */
const SEEDS = [22, 9];
const DURATION_SECONDS = 7;
/** Faults come faster than in long runs so a few seconds still see several of them. */
const FAULT_GAP_MS = 900;

for (const seed of SEEDS) {
  test(`chaos seed ${seed}: converges with no violation`, { timeout: 120_000 }, async (t) => {
    const progress: string[] = [];
    const result = await runChaos({
      ...DEFAULT_OPTIONS,
      seed,
      durationSeconds: DURATION_SECONDS,
      faultGapMs: FAULT_GAP_MS,
      log: (line) => progress.push(line),
    });
    t.diagnostic(result.report.split('\n').slice(0, 7).join(' | '));
    assert.equal(result.violations.length, 0, `${progress.join('\n')}\n${result.report}`);
    assert.notEqual(result.summary.convergeMsAfterHeal, null, 'the cluster converged');
    assert.ok(result.summary.acknowledged > 0, 'some operations were acknowledged');
  });
}
