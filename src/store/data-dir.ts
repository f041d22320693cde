/** The node's data dir on disk: made when missing, refused when it cannot be written. */
import { accessSync, constants, mkdirSync } from 'node:fs';
import { ConfigError } from '../errors.ts';

/**
 * Creates `path` if missing and checks it is writable; a ConfigError naming
 * `--data-dir <shownAs>` (the flag as given) when it is not.
 */
export function makeDataDir(path: string, shownAs: string = path): void {
  try {
    mkdirSync(path, { recursive: true });
    accessSync(path, constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(`--data-dir ${shownAs} is not a writable directory (${code})`);
  }
}
