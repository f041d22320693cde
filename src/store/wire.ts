/**
 * The wire form of entries, shared by the replication sender, the resync and
 * the pool workers: `{"key","value","version"}`, `{"key","deleted":true,
 * "version"}` for a tombstone, or `{"key","version","hash"}` for a key summary. An
 * expiring entry adds `"expiresAt"` (wall-clock ms); once swept it travels as
 * `{"key","expired":true,"version","expiresAt","valueHash"}`.
 * Built by string concatenation: the stored value is already JSON text.
 */
import { formatVersion, type Version } from '../version.ts';

export interface WireRow {
  readonly key: string;
  readonly value: string | null;
  readonly ts: number;
  readonly node: string;
  /** The entry's digest hash; summaries carry it so equal versions can be told apart. */
  readonly hash?: number;
  readonly expires?: number | null;
  readonly vhash?: string | null;
}

export function rowJson(row: WireRow, withValue: boolean): string {
  const version = formatVersion({ timestamp: row.ts, nodeId: row.node });
  const key = JSON.stringify(row.key);
  if (!withValue) {
    const hash = row.hash === undefined ? '' : `,"hash":${row.hash}`;
    return `{"key":${key},"version":"${version}"${hash}}`;
  }
  const expires = row.expires ?? null;
  if (expires !== null) {
    if (row.value === null) {
      return `{"key":${key},"expired":true,"version":"${version}","expiresAt":${expires},"valueHash":"${row.vhash}"}`;
    }
    return `{"key":${key},"value":${row.value},"version":"${version}","expiresAt":${expires}}`;
  }
  if (row.value === null) return `{"key":${key},"deleted":true,"version":"${version}"}`;
  return `{"key":${key},"value":${row.value},"version":"${version}"}`;
}

export function entryJson(entry: {
  key: string;
  valueJson: string | null;
  version: Version;
  expiresAt?: number | null;
  valueHash?: string | null;
}): string {
  return rowJson(
    {
      key: entry.key,
      value: entry.valueJson,
      ts: entry.version.timestamp,
      node: entry.version.nodeId,
      expires: entry.expiresAt ?? null,
      vhash: entry.valueHash ?? null,
    },
    true,
  );
}

/** A POST /replicate body from already-serialised entries. */
export function replicateBody(fromNodeId: string, entriesJson: string, resync: boolean): string {
  return `{"from":"${fromNodeId}","resync":${resync},"entries":[${entriesJson}]}`;
}
