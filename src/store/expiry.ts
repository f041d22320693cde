/**
 * Whether an entry reads as present: it has a value and, if it expires, its
 * expiry is still ahead of the given wall-clock time. Pure: the store, the
 * routes and the watch all decide with this one rule.
 */
import type { Entry } from './types.ts';

export function isLive(
  entry: Pick<Entry, 'valueJson' | 'expiresAt'> | undefined,
  nowWallMs: number,
): boolean {
  if (!entry || entry.valueJson === null) return false;
  return entry.expiresAt === undefined || entry.expiresAt === null || entry.expiresAt > nowWallMs;
}
