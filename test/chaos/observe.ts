// Reads what one node holds: its /store/hash, its full listing (GET /kv paged through `next`), and
// the stored entry of given keys, tombstones included (POST /sync/fetch, the resync's read route),
// plus SQLite's integrity check of a stopped node's file.
import path from 'node:path';
import Database from 'better-sqlite3';
import { getJson, postJson } from '../helpers/http.ts';

const READ_TIMEOUT_MS = 10_000;
const LIST_PAGE_LIMIT = 1_000;
const LIST_PAGES_MAX = 10_000;
const FETCH_KEYS_PER_REQUEST = 1_000;
const DATABASE_FILE = 'peerkv.db';

export interface StoredEntry {
  readonly deleted: boolean;
  readonly value?: unknown;
  readonly version: string;
  /** An expiring entry's expiry (node wall-clock ms). */
  readonly expiresAt?: number;
  /** The expiry sweep dropped its value (it reads as absent). */
  readonly expired?: boolean;
}

export interface Listed {
  readonly value: unknown;
  readonly version: string;
}

export interface NodeSnapshot {
  readonly hash: string;
  /** Live keys as GET /kv lists them. */
  readonly listing: Map<string, Listed>;
  /** Stored entries of the asked keys (absent: never stored on this node). */
  readonly entries: Map<string, StoredEntry>;
}

function ok(what: string, status: number, text: string): void {
  if (status !== 200) throw new Error(`${what}: ${status} ${text.slice(0, 200)}`);
}

export async function readHash(baseUrl: string): Promise<string> {
  const result = await getJson(`${baseUrl}/store/hash`, { timeoutMs: READ_TIMEOUT_MS });
  ok(`GET ${baseUrl}/store/hash`, result.status, result.text);
  const hash = (result.body as { hash?: unknown }).hash;
  if (typeof hash !== 'string') throw new Error(`GET ${baseUrl}/store/hash: no hash`);
  return hash;
}

export async function listAll(baseUrl: string): Promise<Map<string, Listed>> {
  const listing = new Map<string, Listed>();
  let after = '';
  for (let page = 0; page < LIST_PAGES_MAX; page += 1) {
    const url = `${baseUrl}/kv?limit=${LIST_PAGE_LIMIT}&after=${encodeURIComponent(after)}`;
    const result = await getJson(url, { timeoutMs: READ_TIMEOUT_MS });
    ok(`GET ${url}`, result.status, result.text);
    const body = result.body as {
      items: { key: string; value: unknown; version: string }[];
      next: unknown;
    };
    for (const item of body.items)
      listing.set(item.key, { value: item.value, version: item.version });
    if (body.next === null) return listing;
    if (typeof body.next !== 'string') throw new Error(`GET ${url}: bad next ${String(body.next)}`);
    after = body.next;
  }
  throw new Error(`GET ${baseUrl}/kv: more than ${LIST_PAGES_MAX} pages`);
}

/** The stored entry (value or tombstone) of each key that has one. */
export async function fetchEntries(
  baseUrl: string,
  keys: readonly string[],
): Promise<Map<string, StoredEntry>> {
  const entries = new Map<string, StoredEntry>();
  let offset = 0;
  while (offset < keys.length) {
    const asked = keys.slice(offset, offset + FETCH_KEYS_PER_REQUEST);
    const result = await postJson(
      `${baseUrl}/sync/fetch`,
      { keys: asked },
      { timeoutMs: READ_TIMEOUT_MS },
    );
    ok(`POST ${baseUrl}/sync/fetch`, result.status, result.text);
    const body = result.body as {
      rows: {
        key: string;
        value?: unknown;
        deleted?: boolean;
        expired?: boolean;
        expiresAt?: number;
        version: string;
      }[];
      served: number;
    };
    if (!Number.isInteger(body.served) || body.served < 1 || body.served > asked.length) {
      throw new Error(`POST ${baseUrl}/sync/fetch: bad served ${String(body.served)}`);
    }
    for (const row of body.rows) {
      const deleted = row.deleted === true;
      const expiry = row.expiresAt === undefined ? {} : { expiresAt: row.expiresAt };
      if (deleted) entries.set(row.key, { deleted, version: row.version });
      else if (row.expired === true) {
        entries.set(row.key, { deleted, expired: true, version: row.version, ...expiry });
      } else entries.set(row.key, { deleted, value: row.value, version: row.version, ...expiry });
    }
    offset += body.served;
  }
  return entries;
}

export async function snapshot(baseUrl: string, keys: readonly string[]): Promise<NodeSnapshot> {
  const hash = await readHash(baseUrl);
  const listing = await listAll(baseUrl);
  const allKeys = [...new Set([...keys, ...listing.keys()])];
  return { hash, listing, entries: await fetchEntries(baseUrl, allKeys) };
}

/**
 * One string per snapshot's content, equal exactly when hash, listing and entries are equal. An
 * expiring entry is compared by version and expiry only: one node may already have swept its
 * value and another not (their hashes agree), and nodes whose clocks differ list it for
 * different moments.
 */
export function canonical(snap: NodeSnapshot): string {
  const expiring = (key: string): boolean => snap.entries.get(key)?.expiresAt !== undefined;
  const listing = [...snap.listing]
    .filter(([k]) => !expiring(k))
    .map(([k, v]) => `${k}\u0000${v.version}\u0000${JSON.stringify(v.value)}`);
  const entries = [...snap.entries].map(([k, e]) => {
    const content =
      e.expiresAt !== undefined ? `E${e.expiresAt}` : e.deleted ? '-' : JSON.stringify(e.value);
    return `${k}\u0000${e.version}\u0000${content}`;
  });
  return [snap.hash, listing.sort().join('\n'), entries.sort().join('\n')].join('\n\n');
}

/** `PRAGMA integrity_check` on a stopped node's database file: 'ok' or what it reported. */
export function integrityCheck(dataDir: string): string {
  const db = new Database(path.join(dataDir, DATABASE_FILE), {
    readonly: true,
    fileMustExist: true,
  });
  try {
    const rows = db.pragma('integrity_check') as { integrity_check: string }[];
    return rows.map((row) => row.integrity_check).join('; ');
  } finally {
    db.close();
  }
}
