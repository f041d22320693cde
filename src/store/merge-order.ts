/**
 * The order the merge keeps: the higher version wins; two entries with equal
 * versions but different content (two nodes that share a node id, e.g. a
 * copied data dir or a restored backup) are ordered by their content hash, so
 * every node keeps the same one and the store hashes converge. The merge and
 * the resync diff both decide with this one function.
 */
import { compareVersions, type Version } from '../version.ts';

export interface Ranked {
  readonly version: Version;
  /** The entry's 48-bit digest hash (src/store/digest.ts); undefined when a peer sent none. */
  readonly hash: number | undefined;
}

export function compareMergeOrder(a: Ranked, b: Ranked): number {
  const byVersion = compareVersions(a.version, b.version);
  if (byVersion !== 0 || a.hash === undefined || b.hash === undefined) return byVersion;
  if (a.hash === b.hash) return 0;
  return a.hash < b.hash ? -1 : 1;
}
