/**
 * Command-line flags -> validated configuration. Every user mistake becomes a
 * ConfigError with one clear line; src/main.ts prints it and exits 2.
 */
import { resolve } from 'node:path';
import minimist from 'minimist';
import type { NodeConfig } from './config.ts';
import { ConfigError } from './errors.ts';
import { limits, MiB } from './limits.ts';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from './log.ts';
import { parseClusterSecret, type SecuritySources } from './security/load-security.ts';
import type { TlsSources } from './security/tls.ts';

const NODE_FLAGS = [
  'port',
  'peers',
  'data-dir',
  'pingfreq',
  'timeout',
  'host',
  'log-level',
  'log-format',
  'sync',
  'max-value-bytes',
  'max-connections',
  'max-connections-per-client',
  'max-clock-skew-ms',
  'request-timeout',
  'anti-entropy',
  'auth-file',
  'cluster-secret-file',
  'tls-cert',
  'tls-key',
  'tls-ca',
  'tls-verify-peers',
  'expiry-sweep',
  'max-watchers',
  'watch-heartbeat',
  'join',
  'advertise-url',
  'tombstone-grace',
  'removed-member-hold',
] as const;

export const NODE_USAGE = `Usage: peerkv node --port <port> [options]

  --port <n>               port to listen on (required)
  --peers <urls>           comma-separated peer base URLs, e.g. http://127.0.0.1:8002
                           (this node's own URL may be in the list; it is skipped)
  --join <url>             join the cluster of the member at <url> at start: learn
                           the members from it and be added to every member
                           (no --peers needed; members are kept in the database)
  --advertise-url <url>    the URL other members reach this node at (default
                           http(s)://<host>:<port>, 127.0.0.1 for a wildcard host)
  --data-dir <dir>         where the SQLite file lives (default data/node-<port>)
  --pingfreq <seconds>     how often peers are pinged (default 10)
  --timeout <seconds>      timeout of every call to a peer (default 15)
  --anti-entropy <seconds> how often digests are compared with each peer (default 60)
  --expiry-sweep <seconds> how often expired values are swept (default 1)
  --tombstone-grace <time> keep tombstones and expired entries at least this long,
                           and until every member holds them (default 3d; a number
                           of seconds, or with s, m, h or d: 90s, 30m, 12h, 7d)
  --removed-member-hold <time>
                           a removed member can be added back with all it holds
                           for this long; after it, tombstone removal goes on
                           without it (default: the --tombstone-grace)
  --max-watchers <n>       concurrent GET /watch streams (default 256)
  --watch-heartbeat <s>    seconds between heartbeats on idle watch streams (default 15)
  --host <address>         address to bind (default 127.0.0.1)
  --sync <full|normal>     SQLite synchronous level (default full)
  --max-value-bytes <n>    largest value, as JSON text (default 1048576)
  --max-connections <n>    concurrent client connections (default 1024)
  --max-connections-per-client <n>
                           connections one client address may hold (default a
                           quarter of --max-connections; peers are not counted)
  --max-clock-skew-ms <n>  warn when a peer's clock is further off (default 1000)
  --request-timeout <s>    time to receive a whole request, body included (default 30)
  --log-level <level>      fatal|error|warn|info|debug|trace|silent (default info)
  --log-format <format>    json|pretty (default: pretty on a terminal, json otherwise)
  --cluster-secret-file <path>  the secret peers share (or env PEERKV_CLUSTER_SECRET);
                           peer routes then need it, and calls to peers send it
  --auth-file <path>       client tokens (JSON, SHA-256 of each token; see
                           "peerkv token create"); client routes then need a token
  --tls-cert <path>        serve HTTPS with this certificate (PEM; with --tls-key)
  --tls-key <path>         the certificate's private key (PEM)
  --tls-ca <path>          CA (PEM) trusted for https:// peers (else the system CAs)
  --tls-verify-peers       mutual TLS: present our certificate to peers, and accept
                           peer routes only from certificates the --tls-ca signed
  --help                   show this help
`;

/** Parses flags for `peerkv node`; returns undefined when --help was asked. */
export function parseNodeArgs(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  stdoutIsTty = false,
): NodeConfig | undefined {
  const args = parseFlags(argv, NODE_FLAGS);
  if (args.help) return undefined;
  const port = parsePort(args.port);
  const host = args.host ?? '127.0.0.1';
  const peers = parsePeers(args.peers ?? '', host, port);
  const tls = parseTlsSources(args, peers);
  const join = args.join === undefined ? null : parseMemberUrl(args.join, 'join');
  if (join !== null && tls.verifyPeers && join.startsWith('http:')) {
    throw new ConfigError('--tls-verify-peers needs an https:// --join URL');
  }
  const tombstoneGraceMs = parseDuration(args['tombstone-grace'], 'tombstone-grace', '3d');
  return {
    port,
    host,
    peers,
    join,
    advertiseUrl:
      args['advertise-url'] === undefined
        ? defaultAdvertiseUrl(host, port, tls.certFile !== null)
        : parseMemberUrl(args['advertise-url'], 'advertise-url'),
    // Created by the node once every flag and file it names is valid (makeDataDir): a bad
    // configuration changes nothing on disk.
    dataDir: resolve(args['data-dir'] ?? `data/node-${port}`),
    pingIntervalMs: parseSeconds(args.pingfreq, 'pingfreq', 10),
    timeoutMs: parseSeconds(args.timeout, 'timeout', 15),
    antiEntropyIntervalMs: parseSeconds(args['anti-entropy'], 'anti-entropy', 60),
    watchersMax: parseInteger(
      args['max-watchers'],
      'max-watchers',
      limits.watchersMaxDefault,
      100_000,
    ),
    watchHeartbeatMs: parseSeconds(
      args['watch-heartbeat'],
      'watch-heartbeat',
      limits.watchHeartbeatMsDefault / 1000,
    ),
    tombstoneGraceMs,
    removedMemberHoldMs:
      args['removed-member-hold'] === undefined
        ? tombstoneGraceMs
        : parseDuration(args['removed-member-hold'], 'removed-member-hold', '3d'),
    sweepIntervalMs: parseSeconds(
      args['expiry-sweep'],
      'expiry-sweep',
      limits.sweepIntervalMsDefault / 1000,
    ),
    logLevel: parseLogLevel(args['log-level'] ?? 'info'),
    logFormat: parseLogFormat(args['log-format'] ?? (stdoutIsTty ? 'pretty' : 'json')),
    sync: parseSync(args.sync ?? 'full'),
    valueBytesMax: parseInteger(
      args['max-value-bytes'],
      'max-value-bytes',
      limits.valueBytesMaxDefault,
      16 * MiB,
    ),
    connectionsMax: parseInteger(
      args['max-connections'],
      'max-connections',
      limits.connectionsMaxDefault,
      1_000_000,
    ),
    connectionsPerClientMax: parseInteger(
      args['max-connections-per-client'],
      'max-connections-per-client',
      0,
      1_000_000,
    ),
    requestTimeoutMs: parseSeconds(
      args['request-timeout'],
      'request-timeout',
      limits.requestTimeoutMs / 1000,
    ),
    clockSkewMsMax: parseInteger(args['max-clock-skew-ms'], 'max-clock-skew-ms', 1000, 86_400_000),
    security: parseSecuritySources(args, env, peers.length + (join === null ? 0 : 1)),
    tls,
    clockOffsetMs: parseClockOffset(env.PEERKV_CLOCK_OFFSET_MS),
  };
}

function parseSecuritySources(
  args: Partial<Record<(typeof NODE_FLAGS)[number], string>>,
  env: NodeJS.ProcessEnv,
  peerCount: number,
): SecuritySources {
  const secretFile = args['cluster-secret-file'];
  const secretEnv = env.PEERKV_CLUSTER_SECRET;
  if (secretFile !== undefined && secretEnv !== undefined && secretEnv !== '') {
    throw new ConfigError(
      'give the cluster secret once: --cluster-secret-file or PEERKV_CLUSTER_SECRET',
    );
  }
  const sources: SecuritySources = {
    authFile: nonEmptyPath(args['auth-file'], 'auth-file'),
    clusterSecretFile: nonEmptyPath(secretFile, 'cluster-secret-file'),
    clusterSecretEnv:
      secretEnv === undefined || secretEnv === ''
        ? null
        : parseClusterSecret(secretEnv, 'PEERKV_CLUSTER_SECRET'),
  };
  const hasSecret = sources.clusterSecretFile !== null || sources.clusterSecretEnv !== null;
  if (sources.authFile !== null && !hasSecret && peerCount > 0) {
    throw new ConfigError(
      '--auth-file with --peers or --join needs a cluster secret too (--cluster-secret-file or PEERKV_CLUSTER_SECRET), or the peer routes would stay open',
    );
  }
  return sources;
}

function parseTlsSources(
  args: Partial<Record<(typeof NODE_FLAGS)[number], string>>,
  peers: readonly string[],
): TlsSources {
  const verify = args['tls-verify-peers'];
  if (verify !== undefined && verify !== '' && verify !== 'true') {
    throw new ConfigError('--tls-verify-peers takes no value');
  }
  const sources: TlsSources = {
    certFile: nonEmptyPath(args['tls-cert'], 'tls-cert'),
    keyFile: nonEmptyPath(args['tls-key'], 'tls-key'),
    caFile: nonEmptyPath(args['tls-ca'], 'tls-ca'),
    verifyPeers: verify !== undefined,
  };
  if ((sources.certFile === null) !== (sources.keyFile === null)) {
    throw new ConfigError('--tls-cert and --tls-key go together');
  }
  if (sources.verifyPeers && (sources.certFile === null || sources.caFile === null)) {
    throw new ConfigError('--tls-verify-peers needs --tls-cert, --tls-key and --tls-ca');
  }
  if (sources.verifyPeers && peers.some((peer) => peer.startsWith('http:'))) {
    throw new ConfigError('--tls-verify-peers needs https:// peers');
  }
  return sources;
}

function nonEmptyPath(text: string | undefined, name: string): string | null {
  if (text === undefined) return null;
  if (text.trim() === '') throw new ConfigError(`--${name} needs a path`);
  return resolve(text);
}

type Flags<Name extends string> = Partial<Record<Name, string>> & { help: boolean };

export function parseFlags<Name extends string>(
  argv: readonly string[],
  names: readonly Name[],
): Flags<Name> {
  const unknown: string[] = [];
  const parsed = minimist(joinNegativeValues(argv, names), {
    string: [...names],
    boolean: ['help'],
    alias: { h: 'help' },
    unknown: (arg) => {
      unknown.push(arg);
      return false;
    },
  });
  if (unknown.length > 0) {
    const first = unknown[0]!;
    throw new ConfigError(
      first.startsWith('-')
        ? `unknown flag ${first} (see --help)`
        : `unexpected argument ${first} (see --help)`,
    );
  }
  const flags: Partial<Record<Name, string>> = {};
  for (const name of names) {
    const value: unknown = parsed[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) throw new ConfigError(`--${name} given more than once`);
    flags[name] = String(value);
  }
  return { ...flags, help: parsed.help === true };
}

/** `--timeout -1` -> `--timeout=-1`, so minimist does not read `-1` as a flag. */
function joinNegativeValues(argv: readonly string[], names: readonly string[]): string[] {
  const joined: string[] = [];
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index]!;
    const next = argv[index + 1];
    const isFlag = arg.startsWith('--') && names.includes(arg.slice(2));
    if (isFlag && next !== undefined && /^-\d/.test(next)) {
      joined.push(`${arg}=${next}`);
      index += 1;
    } else joined.push(arg);
  }
  return joined;
}

export function parsePort(text: string | undefined): number {
  if (text === undefined || text === '')
    throw new ConfigError('--port is required (e.g. --port 8001)');
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535) {
    throw new ConfigError(`--port must be an integer from 1 to 65535, got "${text}"`);
  }
  return port;
}

function parsePeers(text: string, host: string, port: number): string[] {
  const peers = new Set<string>();
  for (const raw of text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ConfigError(`--peers: "${raw}" is not a URL (expected e.g. http://127.0.0.1:8002)`);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
      throw new ConfigError(`--peers: "${raw}" must be an http:// or https:// URL with a host`);
    }
    if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
      throw new ConfigError(`--peers: "${raw}" must be a base URL without a path`);
    }
    if (!isSelf(url, host, port)) peers.add(url.origin);
  }
  return [...peers];
}

/** One base URL (for --join, --advertise-url): http(s), a host, no path; its origin. */
function parseMemberUrl(raw: string, name: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new ConfigError(`--${name}: "${raw}" is not a URL (expected e.g. http://127.0.0.1:8001)`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    throw new ConfigError(`--${name}: "${raw}" must be an http:// or https:// URL with a host`);
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    throw new ConfigError(`--${name}: "${raw}" must be a base URL without a path`);
  }
  return url.origin;
}

function defaultAdvertiseUrl(host: string, port: number, https: boolean): string {
  const wildcard = host === '0.0.0.0' || host === '::' || host === '';
  const name = wildcard ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return new URL(`${https ? 'https' : 'http'}://${name}:${port}`).origin;
}

const LOOPBACK_NAMES = new Set(['127.0.0.1', 'localhost', '[::1]', '0.0.0.0']);

/** Recognises this node by address; the ping's node id catches the rest. */
function isSelf(url: URL, host: string, port: number): boolean {
  const peerPort = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  if (peerPort !== port) return false;
  const bindsLoopback = LOOPBACK_NAMES.has(host) || host === '::';
  return url.hostname === host || (bindsLoopback && LOOPBACK_NAMES.has(url.hostname));
}

function parseSeconds(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback * 1000;
  const seconds = Number(text);
  if (text.trim() === '' || !Number.isFinite(seconds) || seconds <= 0) {
    throw new ConfigError(`--${name} must be a positive number of seconds, got "${text}"`);
  }
  if (seconds > 86_400) throw new ConfigError(`--${name} must be at most 86400 seconds`);
  return Math.max(1, Math.round(seconds * 1000));
}

const DURATION_UNITS_MS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
const DURATION_MS_MAX = 3_650 * 86_400_000;

/** A duration: seconds, or a number with s, m, h or d; from a second to ten years. */
function parseDuration(text: string | undefined, name: string, fallback: string): number {
  const match = /^(\d+(?:\.\d+)?)([smhd]?)$/.exec((text ?? fallback).trim());
  const ms = match ? Number(match[1]) * DURATION_UNITS_MS[match[2] || 's']! : Number.NaN;
  if (!Number.isFinite(ms) || ms < 1_000 || ms > DURATION_MS_MAX) {
    throw new ConfigError(
      `--${name} must be a duration from 1s to 3650d (e.g. 90, 30m, 7d), got "${text}"`,
    );
  }
  return Math.round(ms);
}

function parseInteger(
  text: string | undefined,
  name: string,
  fallback: number,
  max: number,
): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > max) {
    throw new ConfigError(`--${name} must be an integer from 1 to ${max}, got "${text}"`);
  }
  return value;
}

function parseLogLevel(text: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(text)) {
    throw new ConfigError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${text}"`);
  }
  return text as LogLevel;
}

function parseLogFormat(text: string): LogFormat {
  if (!(LOG_FORMATS as readonly string[]).includes(text)) {
    throw new ConfigError(`--log-format must be "json" or "pretty", got "${text}"`);
  }
  return text as LogFormat;
}

function parseSync(text: string): 'full' | 'normal' {
  if (text !== 'full' && text !== 'normal') {
    throw new ConfigError(`--sync must be "full" or "normal", got "${text}"`);
  }
  return text;
}

function parseClockOffset(text: string | undefined): number {
  if (text === undefined || text === '') return 0;
  const offset = Number(text);
  if (!Number.isInteger(offset))
    throw new ConfigError(`PEERKV_CLOCK_OFFSET_MS must be an integer, got "${text}"`);
  return offset;
}
