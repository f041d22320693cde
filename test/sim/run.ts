// `npm run sim -- --seeds 10000 [--nodes 5] [--from 1]`: runs many seeded schedules, reports
// schedules per second, and on the first failing seed prints it with its violations and trace.
// `npm run sim -- --seed N`: replays one seed and prints its whole trace (the same, byte for
// byte, every time). Exit code 1 on a violation, 2 on bad flags.
import { rmSync } from 'node:fs';
import minimist from 'minimist';
import { DEFAULT_OPTIONS, defaultRootDir, type SimResult, simulate } from './simulate.ts';

const USAGE = `usage: npm run sim -- [--seeds N] [--from S] [--seed N] [--nodes N] [--duration SECONDS] [--keep-going]
  --seeds N      run N seeds, S .. S+N-1 (default 100)
  --from S       first seed of --seeds (default 1)
  --seed N       replay seed N and print its trace
  --nodes N      nodes per schedule, 2..9 (default ${DEFAULT_OPTIONS.nodes})
  --duration S   virtual seconds of ops and faults before the final heal (default ${DEFAULT_OPTIONS.durationMs / 1000})
  --clock-jump-ms J  clock jumps drawn from ±J ms, a clock at most 2J (and 60 s) off (default 20000)
  --keep-going   do not stop at the first failing seed`;

interface Flags {
  readonly seeds: number;
  readonly from: number;
  readonly seed: number | undefined;
  readonly nodes: number;
  readonly durationMs: number;
  readonly keepGoing: boolean;
  readonly clockJumpMsMax: number;
}

function parseFlags(argv: string[]): Flags {
  const args = minimist(argv, {
    string: ['seeds', 'from', 'seed', 'nodes', 'duration', 'clock-jump-ms'],
    boolean: ['keep-going', 'help'],
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
  };
}

function report(result: SimResult, withTrace: boolean, flags: Flags): string {
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
  const rootDir = defaultRootDir();
  const base = {
    clockJumpMsMax: flags.clockJumpMsMax,
    nodes: flags.nodes,
    durationMs: flags.durationMs,
    convergeMsMax: DEFAULT_OPTIONS.convergeMsMax,
    rootDir,
  };
  try {
    if (flags.seed !== undefined) {
      const result = await simulate({ ...base, seed: flags.seed });
      process.stdout.write(`${result.trace.join('\n')}\n`);
      process.stdout.write(report(result, false, flags));
      return result.violations.length === 0 ? 0 : 1;
    }
    // SIGINT/SIGTERM end the run after the seed in progress, with the summary of what ran.
    let stopping = false;
    const stop = () => {
      stopping = true;
    };
    process.once('SIGINT', stop).once('SIGTERM', stop);
    const startedMs = performance.now();
    let failed = 0;
    let events = 0;
    let virtualMs = 0;
    let removed = 0;
    let ran = 0;
    for (let seed = flags.from; seed < flags.from + flags.seeds && !stopping; seed += 1) {
      const result = await simulate({ ...base, seed });
      ran += 1;
      events += result.events;
      virtualMs += result.virtualMs;
      removed += result.tombstonesRemoved;
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
    process.stdout.write(
      `sim: ${ran} schedules (seeds ${flags.from}..${flags.from + ran - 1}, ${flags.nodes} nodes, ${flags.durationMs / 1000} s each) in ${seconds.toFixed(1)} s: ` +
        `${(ran / seconds).toFixed(1)} schedules/s, ${(virtualMs / 1000 / seconds).toFixed(0)} virtual s per real s, ` +
        `${Math.round(events / ran)} events per schedule, ${(removed / Math.max(1, ran)).toFixed(1)} tombstones removed per schedule; ${failed} failed\n`,
    );
    return failed === 0 ? 0 : 1;
  } finally {
    rmSync(rootDir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
