// The chaos checker's settings: defaults, bounds, and the command-line parser behind
// `npm run chaos -- --seed N --duration S --nodes K`.
import minimist from 'minimist';

export interface ChaosOptions {
  /** Everything random (schedule, values, proxy drops) is drawn from this. */
  readonly seed: number;
  /** How long the schedule runs, in seconds (writes stop after it). */
  readonly durationSeconds: number;
  readonly nodes: number;
  /** Client operations in flight at most. */
  readonly concurrency: number;
  /** Mean rate of client operations drawn by the schedule. */
  readonly opsPerSecond: number;
  /** Mean gap between fault steps, in ms. */
  readonly faultGapMs: number;
  /** Deadline for convergence after the final heal, in ms. */
  readonly convergeTimeoutMs: number;
  /** `--pingfreq` and `--timeout` of every node, in seconds. */
  readonly pingfreqSeconds: number;
  readonly timeoutSeconds: number;
  /** `--tombstone-grace` of every node, in seconds: short, so tombstones are removed in the run. */
  readonly tombstoneGraceSeconds: number;
  /** Client request timeout, in ms: no answer by then makes the op's outcome unknown. */
  readonly clientTimeoutMs: number;
  /** Where to write the summary as JSON, if anywhere. */
  readonly jsonPath: string | undefined;
  /** Where to write every recorded operation and fault as JSON lines, if anywhere. */
  readonly historyPath: string | undefined;
  /** Draw membership changes (on by default; `--no-members` leaves them out). */
  readonly memberFaults: boolean;
  /** Keep the temp dir (data and node logs) instead of removing it. */
  readonly keepDirs: boolean;
  /** Progress lines (stderr in the CLI; a test may collect or drop them). */
  readonly log: (line: string) => void;
  /** Aborting stops the run early; cleanup still runs. */
  readonly signal?: AbortSignal;
}

export const NODES_MIN = 2;
export const NODES_MAX = 7; // nodes + one proxy per directed link must fit one freePorts() call
const DURATION_SECONDS_MAX = 86_400;
const CONCURRENCY_MAX = 64;
const OPS_PER_SECOND_MAX = 2_000;

export const DEFAULT_OPTIONS: Omit<ChaosOptions, 'seed' | 'log' | 'signal'> = {
  durationSeconds: 60,
  nodes: 3,
  concurrency: 12,
  opsPerSecond: 60,
  faultGapMs: 2_500,
  convergeTimeoutMs: 30_000,
  pingfreqSeconds: 0.2,
  timeoutSeconds: 1,
  tombstoneGraceSeconds: 10,
  clientTimeoutMs: 5_000,
  jsonPath: undefined,
  historyPath: undefined,
  memberFaults: true,
  keepDirs: false,
};

export const USAGE = `Usage: npm run chaos -- --seed <n> [options]

  --seed <n>             seed of the schedule (required; a failing seed replays)
  --duration <s>         seconds of client operations and faults (default 60)
  --nodes <n>            nodes, ${NODES_MIN}..${NODES_MAX} (default 3)
  --concurrency <n>      client operations in flight at most (default 12)
  --rate <n>             client operations per second (default 60)
  --fault-gap-ms <ms>    mean gap between faults (default 2500)
  --converge-ms <ms>     convergence deadline after the final heal (default 30000)
  --grace <s>            every node's --tombstone-grace in seconds (default 10)
  --json <file>          write the summary as JSON
  --history <file>       write every operation and fault as JSON lines
  --no-members           draw no membership changes (tombstone removal pauses while a
                         member is removed; without them it runs all along)
  --keep                 keep the temp dir (node data and logs)
`;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const FLAGS = [
  'seed',
  'duration',
  'nodes',
  'concurrency',
  'rate',
  'fault-gap-ms',
  'converge-ms',
  'grace',
  'json',
  'history',
];

/** Parses CLI flags; returns undefined when --help was asked. Throws UsageError on bad input. */
export function parseChaosArgs(
  argv: readonly string[],
  log: (line: string) => void,
): ChaosOptions | undefined {
  const args = minimist([...argv], {
    string: FLAGS,
    boolean: ['keep', 'help', 'members'],
    default: { members: true },
  });
  if (args.help) return undefined;
  const unknown = Object.keys(args).filter(
    (name) =>
      name !== '_' &&
      name !== 'keep' &&
      name !== 'help' &&
      name !== 'members' &&
      !FLAGS.includes(name),
  );
  if (unknown.length > 0 || args._.length > 0) {
    throw new UsageError(`unknown argument ${unknown[0] ? `--${unknown[0]}` : String(args._[0])}`);
  }
  if (args.seed === undefined) throw new UsageError('--seed is required');
  const d = DEFAULT_OPTIONS;
  return {
    ...d,
    seed: integer(args.seed, 'seed', -(2 ** 31), 2 ** 32 - 1),
    durationSeconds: number(args.duration, 'duration', d.durationSeconds, 1, DURATION_SECONDS_MAX),
    nodes: integer(args.nodes ?? String(d.nodes), 'nodes', NODES_MIN, NODES_MAX),
    concurrency: integer(
      args.concurrency ?? String(d.concurrency),
      'concurrency',
      1,
      CONCURRENCY_MAX,
    ),
    opsPerSecond: number(args.rate, 'rate', d.opsPerSecond, 1, OPS_PER_SECOND_MAX),
    faultGapMs: number(args['fault-gap-ms'], 'fault-gap-ms', d.faultGapMs, 100, 600_000),
    convergeTimeoutMs: number(
      args['converge-ms'],
      'converge-ms',
      d.convergeTimeoutMs,
      1_000,
      600_000,
    ),
    tombstoneGraceSeconds: number(args.grace, 'grace', d.tombstoneGraceSeconds, 1, 315_360_000),
    jsonPath: optionalString(args.json, 'json'),
    historyPath: optionalString(args.history, 'history'),
    keepDirs: args.keep === true,
    memberFaults: args.members !== false,
    log,
  };
}

function integer(text: unknown, name: string, min: number, max: number): number {
  const value = Number(text);
  if (typeof text !== 'string' || !Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(
      `--${name} must be an integer from ${min} to ${max}, got "${String(text)}"`,
    );
  }
  return value;
}

function number(text: unknown, name: string, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (typeof text !== 'string' || !Number.isFinite(value) || value < min || value > max) {
    throw new UsageError(`--${name} must be a number from ${min} to ${max}, got "${String(text)}"`);
  }
  return value;
}

function optionalString(text: unknown, name: string): string | undefined {
  if (text === undefined) return undefined;
  if (typeof text !== 'string' || text.length === 0) throw new UsageError(`--${name} needs a path`);
  return text;
}
