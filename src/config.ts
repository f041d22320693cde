import type { LogFormat, LogLevel } from './log.ts';
import type { SecuritySources } from './security/load-security.ts';
import type { TlsSources } from './security/tls.ts';
import type { SyncLevel } from './store/open-database.ts';

/** A node's validated configuration (see src/cli.ts for the flags). */
export interface NodeConfig {
  readonly port: number;
  readonly host: string;
  /** Peer base URLs without a trailing slash; this node's own URL removed. */
  readonly peers: readonly string[];
  /** A member to join through at start (`--join`); null: none. */
  readonly join: string | null;
  /** The URL other members reach this node at (`--advertise-url`, else from --host and --port). */
  readonly advertiseUrl: string;
  readonly dataDir: string;
  readonly pingIntervalMs: number;
  readonly timeoutMs: number;
  readonly antiEntropyIntervalMs: number;
  readonly watchersMax: number;
  readonly watchHeartbeatMs: number;
  /** How often the expiry sweep drops the values of expired entries. */
  readonly sweepIntervalMs: number;
  /** Tombstones and expired entries are kept at least this long (src/tombstones/). */
  readonly tombstoneGraceMs: number;
  /** A removed member stays re-addable with all it holds this long (src/tombstones/removed-members.ts). */
  readonly removedMemberHoldMs: number;
  readonly logLevel: LogLevel;
  /** `pretty` on a terminal, `json` otherwise, unless --log-format says. */
  readonly logFormat: LogFormat;
  readonly sync: SyncLevel;
  readonly valueBytesMax: number;
  readonly connectionsMax: number;
  /** Connections one client address may hold; 0: a quarter of connectionsMax. */
  readonly connectionsPerClientMax: number;
  /** Time allowed to receive a whole request, headers and body. */
  readonly requestTimeoutMs: number;
  readonly clockSkewMsMax: number;
  /** Where the cluster secret and client tokens come from (loaded at start and on SIGHUP). */
  readonly security: SecuritySources;
  /** TLS files (loaded at start and on SIGHUP); none: plain HTTP. */
  readonly tls: TlsSources;
  /** Test-only: added to the wall clock (env PEERKV_CLOCK_OFFSET_MS). */
  readonly clockOffsetMs: number;
}
