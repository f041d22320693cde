/**
 * One throttled progress line per load run on stderr: which case, elapsed and
 * total seconds. On a TTY it rewrites one line about once a
 * second; elsewhere (CI logs) it prints a line every few seconds.
 */
import { benchLimits } from './limits.ts';

export interface ProgressLine {
  /** Call as often as you like; it prints at its own pace. */
  update(): void;
  finish(summary: string): void;
}

export function createProgressLine(
  label: string,
  totalSec: number,
  stream: NodeJS.WriteStream | null,
): ProgressLine {
  if (stream === null) return { update: () => {}, finish: () => {} };
  const isTty = stream.isTTY === true;
  const intervalMs = isTty
    ? benchLimits.progressTtyIntervalMs
    : benchLimits.progressPlainIntervalMs;
  const startedMs = Date.now();
  let printedMs = startedMs;
  const line = (): string => {
    const elapsedSec = Math.min(totalSec, (Date.now() - startedMs) / 1000);
    return `[bench] ${label}  ${elapsedSec.toFixed(0)}/${totalSec} s`;
  };
  return {
    update() {
      const nowMs = Date.now();
      if (nowMs - printedMs < intervalMs) return;
      printedMs = nowMs;
      stream.write(isTty ? `\r\x1b[2K${line()}` : `${line()}\n`);
    },
    finish(summary) {
      const text = `[bench] ${label}  done: ${summary}`;
      stream.write(isTty ? `\r\x1b[2K${text}\n` : `${text}\n`);
    },
  };
}
