// `npm run sim -- --seeds 10000 [--nodes 5] [--from 1] [--jobs 2]`: runs many seeded schedules,
// reports schedules per second, and on the first failing seed prints it with its violations and
// trace. With --jobs J the seeds run in J child processes (test/sim/seed-pool.ts); results are
// still read, reported and stopped at in seed order, so the output is what one process prints.
// `npm run sim -- --seed N`: replays one seed and prints its whole trace (the same, byte for
// byte, every time). Exit code 1 on a violation, 2 on bad flags.
import { rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import minimist from 'minimist';
import { type SeedOptions, type SeedOutcome, SeedPool } from './seed-pool.ts';
import {
  DEFAULT_OPTIONS,
  defaultRootDir,
  REMOVED_MEMBER_HOLD_MS_DEFAULT,
  simulate,
} from './simulate.ts';
import { traceDigest } from './trace.ts';

const USAGE = `usage: npm run sim -- [--seeds N] [--from S] [--seed N] [--nodes N] [--duration SECONDS] [--jobs J] [--keep-going]
  --seeds N      run N seeds, S .. S+N-1 (default 100)
  --from S       first seed of --seeds (default 1)
  --seed N       replay seed N and print its trace
  --nodes N      nodes per schedule, 2..9 (default ${DEFAULT_OPTIONS.nodes})
  --duration S   virtual seconds of ops and faults before the final heal (default ${DEFAULT_OPTIONS.durationMs / 1000})
  --clock-jump-ms J  clock jumps drawn from ±J ms, a clock at most 2J (and 60 s) off (default 20000)
  --removed-member-hold-ms H  the nodes' --removed-member-hold (default 3600000: no removal is
                 closed in a schedule); shorter, removals are closed and a node still closed at
                 the end is retired, not added back (see README, Simulation testing)
  --jobs J       run the seeds in J processes (default 1; this machine has ${availableParallelism()} cores)
  --keep-going   do not stop at the first failing seed
  --trace-digests  print each seed's trace SHA-256 (to show a change left every schedule as it was)`;

/** Seeds handed out ahead of the one read next, per job (a slow seed does not idle the rest). */
const AHEAD_PER_JOB = 4;

interface Flags {
  readonly seeds: number;
  readonly from: number;
  readonly seed: number | undefined;
  readonly nodes: number;
  readonly durationMs: number;
  readonly keepGoing: boolean;
  readonly clockJumpMsMax: number;
  readonly removedMemberHoldMs: number;
  readonly jobs: number;
  readonly traceDigests: boolean;
}

function parseFlags(argv: string[]): Flags {
  const args = minimist(argv, {
    string: [
      'seeds',
      'from',
      'seed',
      'nodes',
      'duration',
      'clock-jump-ms',
      'removed-member-hold-ms',
      'jobs',
    ],
    boolean: ['keep-going', 'trace-digests', 'help'],
    unknown: (flag) => {
      if (!flag.startsWith('-')) return true;
      throw new Error(`unknown flag ${flag}`);
    },
  });
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = args[name] as string | undefined;
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new Error(`--${name} must be an integer from ${min} to ${max}, got ${raw}`);
    }
    return value;
  };
  const seedRaw = args.seed as string | undefined;
  return {
    seeds: int('seeds', 100, 1, 100_000_000),
    from: int('from', 1, 0, 2 ** 32 - 1),
    seed: seedRaw === undefined ? undefined : int('seed', 0, 0, 2 ** 32 - 1),
    nodes: int('nodes', DEFAULT_OPTIONS.nodes, 2, 9),
    durationMs: int('duration', DEFAULT_OPTIONS.durationMs / 1000, 1, 3_600) * 1000,
    keepGoing: args['keep-going'] === true,
    clockJumpMsMax: int('clock-jump-ms', 20_000, 0, 3_600_000),
    removedMemberHoldMs: int(
      'removed-member-hold-ms',
      REMOVED_MEMBER_HOLD_MS_DEFAULT,
      0,
      REMOVED_MEMBER_HOLD_MS_DEFAULT,
    ),
    jobs: int('jobs', 1, 1, 64),
    traceDigests: args['trace-digests'] === true,
  };
}

function report(
  result: Pick<SeedOutcome, 'seed' | 'violations' | 'trace'>,
  withTrace: boolean,
  flags: Flags,
): string {
  const lines = [`seed ${result.seed}: ${result.violations.length} violation(s)`];
  for (const violation of result.violations) {
    lines.push(
      `  ${violation.check}${violation.key ? ` [${violation.key}]` : ''}: ${violation.message}`,
    );
  }
  if (withTrace) lines.push('trace:', ...result.trace);
  const extra = [
    flags.durationMs === DEFAULT_OPTIONS.durationMs ? '' : ` --duration ${flags.durationMs / 1000}`,
    flags.clockJumpMsMax === 20_000 ? '' : ` --clock-jump-ms ${flags.clockJumpMsMax}`,
    flags.removedMemberHoldMs === REMOVED_MEMBER_HOLD_MS_DEFAULT
      ? ''
      : ` --removed-member-hold-ms ${flags.removedMemberHoldMs}`,
  ].join('');
  lines.push(`replay: npm run sim -- --seed ${result.seed} --nodes ${flags.nodes}${extra}`);
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<number> {
  let flags: Flags;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`sim: ${(error as Error).message}\n`);
    return 2;
  }
  const base: SeedOptions = {
    clockJumpMsMax: flags.clockJumpMsMax,
    removedMemberHoldMs: flags.removedMemberHoldMs,
    nodes: flags.nodes,
    durationMs: flags.durationMs,
    convergeMsMax: DEFAULT_OPTIONS.convergeMsMax,
  };
  if (flags.seed !== undefined) {
    const rootDir = defaultRootDir();
    try {
      const result = await simulate({ ...base, rootDir, seed: flags.seed });
      process.stdout.write(`${result.trace.join('\n')}\n`);
      process.stdout.write(report(result, false, flags));
      return result.violations.length === 0 ? 0 : 1;
    } finally {
      rmSync(rootDir, { recursive: true, force: true });
    }
  }
  if (flags.jobs === 1) {
    const rootDir = defaultRootDir();
    try {
      const runSeed = async (seed: number): Promise<SeedOutcome> => {
        const result = await simulate({ ...base, rootDir, seed });
        return { ...result, traceSha256: traceDigest(result.trace) };
      };
      return await runSeeds(flags, runSeed, 1);
    } finally {
      rmSync(rootDir, { recursive: true, force: true });
    }
  }
  const pool = new SeedPool(flags.jobs, base);
  try {
    return await runSeeds(flags, (seed) => pool.run(seed), flags.jobs * AHEAD_PER_JOB);
  } finally {
    await pool.close();
  }
}

/** Runs the seeds, up to `ahead` at once, and reads their results in seed order. */
async function runSeeds(
  flags: Flags,
  runSeed: (seed: number) => Promise<SeedOutcome>,
  ahead: number,
): Promise<number> {
  // SIGINT/SIGTERM end the run after the seeds in progress, with the summary of what ran.
  let stopping = false;
  const stop = () => {
    stopping = true;
  };
  process.once('SIGINT', stop).once('SIGTERM', stop);
  const startedMs = performance.now();
  const end = flags.from + flags.seeds;
  const started = new Map<number, Promise<SeedOutcome>>();
  let next = flags.from;
  let failed = 0;
  let events = 0;
  let virtualMs = 0;
  let removed = 0;
  let ran = 0;
  for (let seed = flags.from; seed < end && !stopping; seed += 1) {
    for (; next < end && next < seed + ahead; next += 1) {
      const outcome = runSeed(next);
      // Read in order below; one that is never read (the run stopped first) is not an error.
      outcome.catch(() => {});
      started.set(next, outcome);
    }
    const result = await started.get(seed)!;
    started.delete(seed);
    ran += 1;
    events += result.events;
    virtualMs += result.virtualMs;
    removed += result.tombstonesRemoved;
    if (flags.traceDigests) process.stdout.write(`seed ${seed} trace ${result.traceSha256}\n`);
    if (result.violations.length > 0) {
      failed += 1;
      process.stdout.write(report(result, true, flags));
      if (!flags.keepGoing) break;
    }
    if (ran % 100 === 0) {
      const seconds = (performance.now() - startedMs) / 1000;
      process.stderr.write(
        `sim: ${ran} seeds in ${seconds.toFixed(1)} s (${(ran / seconds).toFixed(1)}/s), ${failed} failed\n`,
      );
    }
  }
  const seconds = (performance.now() - startedMs) / 1000;
  const perJob =
    flags.jobs === 1
      ? ''
      : ` (${flags.jobs} jobs, ${(ran / seconds / flags.jobs).toFixed(1)}/s per job)`;
  process.stdout.write(
    `sim: ${ran} schedules (seeds ${flags.from}..${flags.from + ran - 1}, ${flags.nodes} nodes, ${flags.durationMs / 1000} s each) in ${seconds.toFixed(1)} s: ` +
      `${(ran / seconds).toFixed(1)} schedules/s${perJob}, ${(virtualMs / 1000 / seconds).toFixed(0)} virtual s per real s, ` +
      `${Math.round(events / ran)} events per schedule, ${(removed / Math.max(1, ran)).toFixed(1)} tombstones removed per schedule; ${failed} failed\n`,
  );
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main();
