/**
 * Flags of the client commands -> validated options. A usage mistake throws
 * a ConfigError (one line on stderr, exit code 2); `--node` may repeat.
 */
import { readFileSync } from 'node:fs';
import minimist from 'minimist';
import { ConfigError } from '../errors.ts';

export interface CommandOptions {
  readonly command: string;
  readonly positional: string[];
  readonly nodes: string[];
  readonly token: string | undefined;
  readonly ca: Buffer | undefined;
  readonly timeoutMs: number;
  readonly json: boolean;
  readonly help: boolean;
  readonly prefix: string | undefined;
  readonly after: string | undefined;
  readonly limit: number | undefined;
  readonly concurrency: number | undefined;
  /** `backup --out FILE`: where the copy goes (else stdout). */
  readonly out: string | undefined;
}

const NODE_DEFAULT = 'http://127.0.0.1:8001';
const STRING_FLAGS = [
  'node',
  'token',
  'ca',
  'timeout',
  'prefix',
  'after',
  'limit',
  'concurrency',
  'out',
];
/** Which command takes which flags beyond the connection ones. */
const COMMAND_FLAGS: Record<string, readonly string[]> = {
  ls: ['prefix', 'after', 'limit'],
  dump: ['prefix'],
  load: ['concurrency'],
  backup: ['out'],
};
const CONNECTION_FLAGS = ['node', 'token', 'ca', 'timeout', 'json', 'help', 'h'];
const POSITIONAL_COUNT: Record<string, [min: number, max: number, names: string]> = {
  get: [1, 1, 'KEY'],
  put: [2, 2, 'KEY VALUE'],
  del: [1, 1, 'KEY'],
  ls: [0, 0, ''],
  status: [0, 0, ''],
  load: [1, 1, 'FILE'],
  dump: [0, 0, ''],
  member: [1, 2, 'list | add URL | remove ID'],
  backup: [0, 0, ''],
};
/** A backup waits for the node to copy its whole database before the first byte. */
const TIMEOUT_MS_DEFAULT: Record<string, number> = { backup: 600_000 };
const LIMIT_MAX = 1_000_000;
const CONCURRENCY_MAX = 256;

export function parseCommand(
  command: string,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): CommandOptions {
  const { args, negatives } = shieldNegatives(argv);
  const parsed = minimist(args, {
    string: STRING_FLAGS,
    boolean: ['json', 'help'],
    alias: { h: 'help' },
  });
  const allowed = new Set([...CONNECTION_FLAGS, ...(COMMAND_FLAGS[command] ?? [])]);
  for (const name of Object.keys(parsed)) {
    if (name !== '_' && !allowed.has(name)) {
      throw new ConfigError(`${command}: unknown flag --${name} (see peerkv ${command} --help)`);
    }
  }
  const help = parsed.help === true;
  const positional = parsed._.map((arg) => negatives.get(String(arg)) ?? String(arg));
  const [min, max, names] = POSITIONAL_COUNT[command]!;
  if (!help && (positional.length < min || positional.length > max)) {
    const expected = names === '' ? 'no arguments' : names;
    throw new ConfigError(`${command}: expected ${expected} (see peerkv ${command} --help)`);
  }
  return {
    command,
    positional,
    nodes: parseNodes(parsed.node),
    token: single(parsed.token, 'token') ?? (env.PEERKV_TOKEN || undefined),
    ca: readCa(single(parsed.ca, 'ca')),
    timeoutMs: parseTimeout(single(parsed.timeout, 'timeout'), TIMEOUT_MS_DEFAULT[command]),
    json: parsed.json === true,
    help,
    prefix: single(parsed.prefix, 'prefix'),
    after: single(parsed.after, 'after'),
    limit: parseCount(single(parsed.limit, 'limit'), 'limit', LIMIT_MAX),
    concurrency: parseCount(
      single(parsed.concurrency, 'concurrency'),
      'concurrency',
      CONCURRENCY_MAX,
    ),
    out: nonEmpty(single(parsed.out, 'out'), 'out'),
  };
}

/**
 * `peerkv put k -5`: minimist would read `-5` as a flag. Such arguments (not
 * the value of a flag) are swapped for placeholders and restored afterwards.
 */
function shieldNegatives(argv: readonly string[]): {
  args: string[];
  negatives: Map<string, string>;
} {
  const negatives = new Map<string, string>();
  const args = argv.map((arg, index) => {
    const previous = argv[index - 1];
    const isFlagValue =
      previous !== undefined && STRING_FLAGS.includes(previous.replace(/^--/, ''));
    if (!/^-[\d.]/.test(arg) || isFlagValue) return arg;
    const placeholder = `\u0000negative-${index}`;
    negatives.set(placeholder, arg);
    return placeholder;
  });
  return { args, negatives };
}

function single(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw new ConfigError(`--${name} given more than once`);
  return String(value);
}

function parseNodes(value: unknown): string[] {
  const given = value === undefined ? [NODE_DEFAULT] : Array.isArray(value) ? value : [value];
  return given.map((text) => {
    const raw = String(text);
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ConfigError(`--node "${raw}" is not a URL (expected e.g. ${NODE_DEFAULT})`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ConfigError(`--node "${raw}" must be an http:// or https:// URL`);
    }
    return url.origin;
  });
}

function readCa(path: string | undefined): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(`--ca ${path} cannot be read (${code})`);
  }
}

function nonEmpty(text: string | undefined, name: string): string | undefined {
  if (text !== undefined && text.trim() === '') throw new ConfigError(`--${name} needs a value`);
  return text;
}

function parseTimeout(text: string | undefined, fallbackMs = 10_000): number {
  if (text === undefined) return fallbackMs;
  const seconds = Number(text);
  if (text.trim() === '' || !Number.isFinite(seconds) || seconds <= 0 || seconds > 3_600) {
    throw new ConfigError(`--timeout must be a number of seconds from 0 to 3600, got "${text}"`);
  }
  return Math.max(1, Math.round(seconds * 1000));
}

function parseCount(text: string | undefined, name: string, max: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > max) {
    throw new ConfigError(`--${name} must be an integer from 1 to ${max}, got "${text}"`);
  }
  return value;
}
