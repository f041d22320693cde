// What a simulated node holds, read the way the chaos observer reads a real node
// (test/chaos/observe.ts): its hash, its listing, and the stored entry of every key.
import { entryJson } from '../../src/store/wire.ts';
import { formatVersion } from '../../src/version.ts';
import type { NodeSnapshot, StoredEntry } from '../chaos/observe.ts';
import { SIM_KEYS } from './schedule.ts';
import type { SimNode } from './sim-node.ts';

/** A running node's snapshot. */
export function snapshotOf(node: SimNode): NodeSnapshot {
  const store = node.running!.store;
  const listing = new Map(
    store
      .list('', '', 10_000)
      .map((entry) => [
        entry.key,
        { value: JSON.parse(entry.valueJson!), version: formatVersion(entry.version) },
      ]),
  );
  const entries = new Map<string, StoredEntry>();
  for (const key of new Set([...SIM_KEYS, ...listing.keys()])) {
    const entry = store.get(key);
    if (entry) entries.set(key, storedEntry(entryJson(entry)));
  }
  return { hash: store.digest.root(), listing, entries };
}

/** An entry as the chaos observer reads it from POST /sync/fetch (test/chaos/observe.ts). */
function storedEntry(json: string): StoredEntry {
  const row = JSON.parse(json) as {
    value?: unknown;
    deleted?: boolean;
    expired?: boolean;
    expiresAt?: number;
    version: string;
  };
  const expiry = row.expiresAt === undefined ? {} : { expiresAt: row.expiresAt };
  if (row.deleted === true) return { deleted: true, version: row.version };
  if (row.expired === true)
    return { deleted: false, expired: true, version: row.version, ...expiry };
  return { deleted: false, value: row.value, version: row.version, ...expiry };
}
