// The simulator's trace: one line per client op (with its outcome), fault and node log line,
// each stamped with virtual time only, so a seed's trace is the same byte for byte every run.
import { createHash } from 'node:crypto';
import pino, { type Logger } from 'pino';
import type { VirtualTime } from './virtual-time.ts';

const TRACE_LINES_MAX = 20_000;

export class Trace {
  readonly lines: string[] = [];
  readonly #time: VirtualTime;

  constructor(time: VirtualTime) {
    this.#time = time;
  }

  note(text: string): void {
    if (this.lines.length < TRACE_LINES_MAX) {
      this.lines.push(`${(this.#time.nowMs / 1000).toFixed(3).padStart(8)} ${text}`);
    } else if (this.lines.length === TRACE_LINES_MAX) this.lines.push('... (trace cut here)');
  }

  /** A pino logger whose lines go into the trace, readable and without wall time. */
  logger(node: number): Logger {
    return pino(
      { level: 'info', base: null, timestamp: false },
      { write: (line: string) => this.note(`n${node} ${formatLog(line)}`) },
    );
  }
}

const LEVELS: Record<number, string> = { 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

function formatLog(line: string): string {
  const { level, msg, component, ...rest } = JSON.parse(line) as Record<string, unknown>;
  const fields = Object.entries(rest)
    .map(([name, value]) => `${name}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ')
    .slice(0, 300);
  return `${LEVELS[level as number] ?? level} ${component ?? '-'}: ${msg}${fields ? ` ${fields}` : ''}`;
}

/** SHA-256 of a whole trace, lines joined by newlines (`--trace-digests` prints one per seed). */
export function traceDigest(lines: readonly string[]): string {
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}
