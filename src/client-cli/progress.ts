/**
 * A one-line progress bar on stderr, redrawn at most every 100 ms, for a
 * terminal only: `create()` returns a no-op when stderr is not a TTY, so a
 * piped or logged run prints no control characters.
 */

export interface Progress {
  /** Adds `count` done items. */
  advance(count: number): void;
  /** Clears the bar (call once, at the end). */
  done(): void;
}

const REDRAW_MS = 100;
const BAR_WIDTH = 30;

export function createProgress(
  stream: NodeJS.WriteStream,
  label: string,
  total: number | undefined,
): Progress {
  if (!stream.isTTY) return { advance: () => {}, done: () => {} };
  const startedMs = performance.now();
  let count = 0;
  let drawnMs = 0;
  const draw = () => {
    const seconds = Math.max(0.001, (performance.now() - startedMs) / 1000);
    const rate = Math.round(count / seconds).toLocaleString('en-US');
    const done = count.toLocaleString('en-US');
    if (total === undefined || total === 0) {
      stream.write(`\r${label} ${done} (${rate}/s)\x1b[K`);
      return;
    }
    const fraction = Math.min(1, count / total);
    const filled = Math.round(fraction * BAR_WIDTH);
    const bar = `${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}`;
    const percent = Math.floor(fraction * 100);
    stream.write(
      `\r${label} [${bar}] ${percent}% ${done}/${total.toLocaleString('en-US')} (${rate}/s)\x1b[K`,
    );
  };
  return {
    advance(added) {
      count += added;
      const now = performance.now();
      if (now - drawnMs >= REDRAW_MS) {
        drawnMs = now;
        draw();
      }
    },
    done() {
      draw();
      stream.write('\n');
    },
  };
}
