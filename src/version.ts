/**
 * An entry's version: the HLC timestamp of the write plus the id of the node
 * that made it. Versions are totally ordered (timestamp, then node id), which
 * makes last-writer-wins merging deterministic on every node.
 *
 * On the wire and in the API a version is one string that sorts like the
 * version itself: 14 hex digits of timestamp, a dash, the 16-hex node id.
 */

export interface Version {
  readonly timestamp: number;
  readonly nodeId: string;
}

export const NODE_ID_PATTERN = /^[0-9a-f]{16}$/;
const VERSION_PATTERN = /^([0-9a-f]{14})-([0-9a-f]{16})$/;

export function compareVersions(a: Version, b: Version): number {
  if (a.timestamp !== b.timestamp) return a.timestamp < b.timestamp ? -1 : 1;
  if (a.nodeId === b.nodeId) return 0;
  return a.nodeId < b.nodeId ? -1 : 1;
}

export function formatVersion(version: Version): string {
  return `${version.timestamp.toString(16).padStart(14, '0')}-${version.nodeId}`;
}

/** Parses a version string; returns undefined when it is malformed. */
export function parseVersion(text: unknown): Version | undefined {
  if (typeof text !== 'string') return undefined;
  const match = VERSION_PATTERN.exec(text);
  if (!match) return undefined;
  const timestamp = Number.parseInt(match[1]!, 16);
  if (!Number.isSafeInteger(timestamp) || timestamp <= 0) {
    return undefined;
  }
  return { timestamp, nodeId: match[2]! };
}
