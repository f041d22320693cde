// Invariants the simulator checks between steps, on the live nodes' real state:
// - cursor: a sender's cursor never passes what the peer acknowledged — every change this node
//   originated, up to the cursor (and after where it first met the peer), is held by the peer at
//   that version or a newer one (entries the peer refused are skipped by design, and left out;
//   a tombstone or expired entry the peer removed past its horizon is held no more, and neither
//   is a change the peer held a removed tombstone newer than);
// - version order: a key's stored version on a node never goes back, across crashes too;
// - digest: the in-memory bucket digest, and the one persisted, equal a recount of the rows.

import Database from 'better-sqlite3';
import { addHash, BUCKETS, bucketOf, entryHash } from '../../src/store/digest.ts';
import type { Change, Entry } from '../../src/store/types.ts';
import { compareVersions, formatVersion, type Version } from '../../src/version.ts';
import type { SimNode } from './sim-node.ts';

export interface SimViolation {
  readonly check: string;
  readonly message: string;
  readonly key?: string;
  readonly node?: number;
  readonly atMs?: number;
}

const CHANGES_READ_MAX = 1_000_000;
const VIOLATIONS_MAX = 50;
/** Entry hashes remembered per schedule (the same rows are hashed again at every check). */
const HASHES_REMEMBERED_MAX = 100_000;

export class Invariants {
  readonly violations: SimViolation[] = [];
  /** Per directed pair "a>b": the cursor a's sender jumped to when it first met b. */
  readonly #bases = new Map<string, number>();
  /** Per node, the version each key was last seen holding. */
  readonly #versions: Map<string, Version>[];
  /** "peer|key|version" of entries a peer refused (400/413). */
  readonly #refused = new Set<string>();
  readonly #reported = new Set<string>();
  /** entryHash and bucketOf are pure: each distinct input is hashed once per schedule. */
  readonly #hashes = new Map<string, number>();
  readonly #buckets = new Map<string, number>();
  readonly #recountSums = new Float64Array(BUCKETS);
  readonly #recountCounts = new Float64Array(BUCKETS);

  constructor(nodes: number) {
    this.#versions = Array.from({ length: nodes }, () => new Map());
  }

  noteFreshPeer(from: number, to: number, cursor: number): void {
    this.#bases.set(`${from}>${to}`, cursor);
  }

  noteRefused(peer: number, key: string, version: string): void {
    this.#refused.add(`${peer}|${key}|${version}`);
  }

  /** After every step: versions and cursors; with `digest`, the digest against the rows. */
  check(nodes: readonly SimNode[], atMs: number, digest: boolean): void {
    // Every row of each node (each has a seq above 0), and by key, so the cursor check need not
    // read each key again; a key not found there is read from the store.
    const read = nodes.map((node) => node.storeRows(CHANGES_READ_MAX));
    const held = read.map((rows) => rows?.byKey ?? new Map<string, Entry>());
    for (const node of nodes) {
      const changes = read[node.index]?.changes;
      if (changes === undefined) continue;
      this.#checkVersions(node, changes, atMs);
      this.#checkCursors(node, nodes, changes, held, atMs);
      if (digest) this.#checkDigest(node, changes, atMs);
    }
  }

  #entryHash(change: Change): number {
    const version = formatVersion(change.version);
    const expiresAt = change.expiresAt ?? null;
    const valueHash = change.valueHash ?? null;
    const id = JSON.stringify([change.key, version, change.valueJson, expiresAt, valueHash]);
    let hash = this.#hashes.get(id);
    if (hash === undefined) {
      if (this.#hashes.size >= HASHES_REMEMBERED_MAX) this.#hashes.clear();
      hash = entryHash(change.key, version, change.valueJson, expiresAt, valueHash);
      this.#hashes.set(id, hash);
    }
    return hash;
  }

  #bucketOf(key: string): number {
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= HASHES_REMEMBERED_MAX) this.#buckets.clear();
      bucket = bucketOf(key);
      this.#buckets.set(key, bucket);
    }
    return bucket;
  }

  /** The in-memory digest equals a recount of the rows (every bucket). */
  #checkDigest(node: SimNode, changes: readonly Change[], atMs: number): void {
    // Scratch arrays, zero again before this returns: only the buckets the rows fall in change.
    const sums = this.#recountSums;
    const counts = this.#recountCounts;
    const touched: number[] = [];
    for (const change of changes) {
      const bucket = this.#bucketOf(change.key);
      if (counts[bucket] === 0) touched.push(bucket);
      sums[bucket] = addHash(sums[bucket]!, this.#entryHash(change));
      counts[bucket]! += 1;
    }
    const digest = node.running!.store.digest;
    let message: string | undefined;
    for (let bucket = 0; bucket < BUCKETS; bucket += 1) {
      if (digest.sums[bucket] !== sums[bucket] || digest.counts[bucket] !== counts[bucket]) {
        message = `bucket ${bucket}: digest ${digest.sums[bucket]}/${digest.counts[bucket]} != recount ${sums[bucket]}/${counts[bucket]}`;
        break;
      }
    }
    for (const bucket of touched) {
      sums[bucket] = 0;
      counts[bucket] = 0;
    }
    if (message !== undefined) this.#fail('digest', node.index, atMs, message);
  }

  /** The persisted digest (and the in-memory one) equal a recount in one snapshot (a pool task). */
  recount(nodes: readonly SimNode[], atMs: number): void {
    for (const node of nodes) {
      const run = node.running;
      if (!run) continue;
      const scan = this.#scanDigest(run.store.dbPath);
      const digest = run.store.digest;
      for (let bucket = 0; bucket < BUCKETS; bucket += 1) {
        const computed = [scan.computedSums[bucket], scan.computedCounts[bucket]];
        const held = [digest.sums[bucket], digest.counts[bucket]];
        const stored = [scan.storedSums[bucket], scan.storedCounts[bucket]];
        if (computed[0] !== held[0] || computed[1] !== held[1]) {
          this.#fail(
            'digest',
            node.index,
            atMs,
            `bucket ${bucket}: digest ${held} != recount ${computed}`,
          );
          return;
        }
        if (computed[0] !== stored[0] || computed[1] !== stored[1]) {
          this.#fail(
            'digest',
            node.index,
            atMs,
            `bucket ${bucket}: persisted ${stored} != recount ${computed}`,
          );
          return;
        }
      }
    }
  }

  #checkVersions(node: SimNode, changes: readonly Change[], atMs: number): void {
    const seen = this.#versions[node.index]!;
    for (const change of changes) {
      const before = seen.get(change.key);
      if (before !== undefined && compareVersions(change.version, before) < 0) {
        this.#fail(
          'version-order',
          node.index,
          atMs,
          `key ${change.key} went back from ${formatVersion(before)} to ${formatVersion(change.version)}`,
          change.key,
        );
      }
      seen.set(change.key, change.version);
    }
  }

  #checkCursors(
    node: SimNode,
    nodes: readonly SimNode[],
    changes: readonly Change[],
    rows: readonly ReadonlyMap<string, Entry>[],
    atMs: number,
  ): void {
    const run = node.running!;
    for (const peer of run.peers) {
      const other = nodes.find((candidate) => candidate.nodeId === peer.sender.peerNodeId);
      const base = other && this.#bases.get(`${node.index}>${other.index}`);
      if (!other?.running || base === undefined) continue;
      // A peer that closed this node's removal went on without it: it may have removed past
      // its horizon a tombstone that superseded what this node still holds.
      if (other.running.removed.isClosed(node.nodeId)) continue;
      const cursor = peer.sender.cursor;
      for (const change of changes) {
        if (change.seq <= base) continue;
        if (change.seq > cursor) break;
        if (change.sourceNodeId !== node.nodeId) continue;
        const version = formatVersion(change.version);
        if (this.#refused.has(`${other.index}|${change.key}|${version}`)) continue;
        const held = rows[other.index]!.get(change.key) ?? other.running.store.get(change.key);
        // A tombstone or expired entry the peer removed past its horizon is held no more.
        const removed =
          held === undefined &&
          (change.valueJson === null || change.expiresAt != null) &&
          change.version.timestamp < other.running.store.horizon;
        // Or the peer held a newer tombstone or expired entry of the key, and removed that
        // (sim seed 53962: a put superseded by a delete the peer then removed).
        const removedVersion = other.removedRows.get(change.key);
        const superseded =
          held === undefined &&
          removedVersion !== undefined &&
          compareVersions(removedVersion, change.version) >= 0;
        if (removed || superseded) continue;
        if (held === undefined || compareVersions(held.version, change.version) < 0) {
          this.#fail(
            'cursor',
            node.index,
            atMs,
            `cursor toward n${other.index} is ${cursor}, past seq ${change.seq} (${change.key} ${version}), which n${other.index} holds ${held ? `at ${formatVersion(held.version)}` : 'not at all'}`,
            change.key,
          );
        }
      }
    }
  }

  /**
   * The scan-digest pool task (workers/store-tasks.ts), on its own read-only connection in one
   * snapshot, except that only the persisted buckets that are not 0/0 are read: a missing row
   * reads as 0/0 there too, and reading all 4,096 rows cost more than the rest of the check.
   */
  #scanDigest(dbPath: string): BucketScan {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      db.pragma('query_only = ON');
      return db.transaction(() => {
        const scan: BucketScan = {
          computedSums: new Float64Array(BUCKETS),
          computedCounts: new Float64Array(BUCKETS),
          storedSums: new Float64Array(BUCKETS),
          storedCounts: new Float64Array(BUCKETS),
        };
        const rows = db.prepare('SELECT key, value, ts, node, expires, vhash, bucket FROM kv');
        for (const row of rows.iterate() as Iterable<ScannedRow>) {
          const version = formatVersion({ timestamp: row.ts, nodeId: row.node });
          const hash = entryHash(row.key, version, row.value, row.expires, row.vhash);
          scan.computedSums[row.bucket] = addHash(scan.computedSums[row.bucket]!, hash);
          scan.computedCounts[row.bucket]! += 1;
        }
        const stored = db
          .prepare('SELECT id, sum, count FROM buckets WHERE sum != 0 OR count != 0')
          .all() as { id: number; sum: number; count: number }[];
        for (const row of stored) {
          scan.storedSums[row.id] = row.sum;
          scan.storedCounts[row.id] = row.count;
        }
        return scan;
      })();
    } finally {
      db.close();
    }
  }

  #fail(check: string, node: number, atMs: number, message: string, key?: string): void {
    // The same broken state seen again at a later step is one violation, not one per step.
    const id = `${check}|${node}|${message}`;
    if (this.#reported.has(id) || this.violations.length >= VIOLATIONS_MAX) return;
    this.#reported.add(id);
    this.violations.push({ check, node, atMs, message, ...(key === undefined ? {} : { key }) });
  }
}

interface BucketScan {
  readonly computedSums: Float64Array;
  readonly computedCounts: Float64Array;
  readonly storedSums: Float64Array;
  readonly storedCounts: Float64Array;
}

interface ScannedRow {
  readonly key: string;
  readonly value: string | null;
  readonly ts: number;
  readonly node: string;
  readonly expires: number | null;
  readonly vhash: string | null;
  readonly bucket: number;
}
