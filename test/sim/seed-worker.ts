// A child of the seed pool (test/sim/seed-pool.ts): runs the seeds it is sent, one at a time,
// in a data directory of its own, and answers each with its outcome (the trace only when the
// seed failed). It ends when the runner disconnects, after the seed in progress.
import { rmSync } from 'node:fs';
import type { SeedOptions, WorkerAnswer } from './seed-pool.ts';
import { defaultRootDir, simulate } from './simulate.ts';
import { traceDigest } from './trace.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as SeedOptions;
const rootDir = defaultRootDir();
let busy = false;
let disconnected = false;

function cleanUp(): void {
  rmSync(rootDir, { recursive: true, force: true });
}

async function runSeed(seed: number): Promise<WorkerAnswer> {
  try {
    const result = await simulate({ ...options, rootDir, seed });
    const failed = result.violations.length > 0;
    return {
      seed,
      violations: result.violations,
      trace: failed ? result.trace : [],
      traceSha256: traceDigest(result.trace),
      events: result.events,
      virtualMs: result.virtualMs,
      tombstonesRemoved: result.tombstonesRemoved,
    };
  } catch (error) {
    return { seed, error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
  }
}

// Ctrl-C reaches the whole process group: the runner decides when to stop, and disconnects.
process.on('SIGINT', () => {});
process.on('message', (message: { seed: number }) => {
  busy = true;
  void runSeed(message.seed).then((answer) => {
    busy = false;
    if (disconnected) cleanUp();
    else process.send?.(answer);
  });
});
process.on('disconnect', () => {
  disconnected = true;
  if (!busy) cleanUp();
});
