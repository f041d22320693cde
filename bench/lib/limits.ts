/**
 * Every bound the benchmark harness keeps, in one place (the bench's own, not
 * peerkv's: those live in src/limits.ts).
 */
export const benchLimits = {
  /** Children one ProcessGroup may run at once (a 5-node cluster plus spares). */
  childrenMax: 32,
  /** Bytes of a child's combined stdout/stderr kept for error messages. */
  childOutputTailBytesMax: 64 * 1024,
  /** A child must answer its readiness URL within this. */
  readyDeadlineMs: 20_000,
  /** One readiness probe (connect + headers + body). */
  readyProbeTimeoutMs: 1_000,
  /** Pause between two readiness probes. */
  readyProbeIntervalMs: 50,
  /** After SIGTERM, wait this long before SIGKILL. */
  stopGraceMs: 5_000,
  /** After SIGKILL, wait this long for the exit event before giving up. */
  killDeadlineMs: 2_000,
  /** autocannon: a request with no answer after this counts as a timeout. */
  requestTimeoutSec: 10,
  /** runLoad accepts at most this many connections and seconds. */
  connectionsMax: 10_000,
  durationSecMax: 3_600,
  /** Ceiling server: largest POST /echo body it reads. */
  echoBodyBytesMax: 1024 * 1024,
  /** Progress lines: at most one per this many ms on a TTY, and off a TTY. */
  progressTtyIntervalMs: 1_000,
  progressPlainIntervalMs: 5_000,
  /** Quick mode must finish within this (checked and reported by run.ts). */
  quickTotalMsMax: 60_000,
} as const;
