/**
 * The one root logger; components take children of it. JSON lines by
 * default; `pretty` (readable, coloured lines through pino-pretty, in this
 * process) is what a person at a terminal gets.
 */
import { createRequire } from 'node:module';
import { type Logger, pino } from 'pino';
import type * as Pretty from 'pino-pretty';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function createRootLogger(
  level: LogLevel,
  bindings: Record<string, unknown>,
  format: LogFormat = 'json',
): Logger {
  const options = { level, base: { pid: process.pid, ...bindings } };
  if (format === 'json') return pino(options);
  // Loaded only here: a node logging JSON (every service) does not carry it.
  const { PinoPretty } = createRequire(import.meta.url)('pino-pretty') as typeof Pretty;
  // Colours only where the output is a terminal (pino-pretty's own check); one line per entry.
  const stream = PinoPretty({
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
    sync: true,
  });
  return pino(options, stream);
}
