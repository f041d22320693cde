// Invariants the simulator checks between steps, on the live nodes' real state:
// - cursor: a sender's cursor never passes what the peer acknowledged — every change this node
//   originated, up to the cursor (and after where it first met the peer), is held by the peer at
//   that version or a newer one (entries the peer refused are skipped by design, and left out;
//   a tombstone or expired entry the peer removed past its horizon is held no more);
// - version order: a key's stored version on a node never goes back, across crashes too;
// - digest: the in-memory bucket digest, and the one persisted, equal a recount of the rows.

import { addHash, BUCKETS, bucketOf, entryHash } from '../../src/store/digest.ts';
import type { Change } from '../../src/store/types.ts';
import { compareVersions, formatVersion, type Version } from '../../src/version.ts';
import runTask, { type ScanDigestResult } from '../../workers/store-tasks.ts';
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

export class Invariants {
  readonly violations: SimViolation[] = [];
  /** Per directed pair "a>b": the cursor a's sender jumped to when it first met b. */
  readonly #bases = new Map<string, number>();
  /** Per node, the version each key was last seen holding. */
  readonly #versions: Map<string, Version>[];
  /** "peer|key|version" of entries a peer refused (400/413). */
  readonly #refused = new Set<string>();
  readonly #reported = new Set<string>();

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
    const rows = nodes.map((node) => node.running?.store.changesSince(0, CHANGES_READ_MAX));
    for (const node of nodes) {
      const changes = rows[node.index];
      if (changes === undefined) continue;
      this.#checkVersions(node, changes, atMs);
      this.#checkCursors(node, nodes, changes, atMs);
      if (digest) this.#checkDigest(node, changes, atMs);
    }
  }

  /** The in-memory digest equals a recount of the rows (every bucket). */
  #checkDigest(node: SimNode, changes: readonly Change[], atMs: number): void {
    const sums = new Float64Array(BUCKETS);
    const counts = new Float64Array(BUCKETS);
    for (const change of changes) {
      const bucket = bucketOf(change.key);
      const hash = entryHash(
        change.key,
        formatVersion(change.version),
        change.valueJson,
        change.expiresAt ?? null,
        change.valueHash ?? null,
      );
      sums[bucket] = addHash(sums[bucket]!, hash);
      counts[bucket]! += 1;
    }
    const digest = node.running!.store.digest;
    for (let bucket = 0; bucket < BUCKETS; bucket += 1) {
      if (digest.sums[bucket] !== sums[bucket] || digest.counts[bucket] !== counts[bucket]) {
        this.#fail(
          'digest',
          node.index,
          atMs,
          `bucket ${bucket}: digest ${digest.sums[bucket]}/${digest.counts[bucket]} != recount ${sums[bucket]}/${counts[bucket]}`,
        );
        return;
      }
    }
  }

  /** The persisted digest (and the in-memory one) equal a recount in one snapshot (a pool task). */
  recount(nodes: readonly SimNode[], atMs: number): void {
    for (const node of nodes) {
      const run = node.running;
      if (!run) continue;
      const scan = runTask({ kind: 'scan-digest', dbPath: run.store.dbPath }) as ScanDigestResult;
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
    atMs: number,
  ): void {
    const run = node.running!;
    for (const peer of run.peers) {
      const other = nodes.find((candidate) => candidate.nodeId === peer.sender.peerNodeId);
      const base = other && this.#bases.get(`${node.index}>${other.index}`);
      if (!other?.running || base === undefined) continue;
      const cursor = peer.sender.cursor;
      for (const change of changes) {
        if (change.seq <= base) continue;
        if (change.seq > cursor) break;
        if (change.sourceNodeId !== node.nodeId) continue;
        const version = formatVersion(change.version);
        if (this.#refused.has(`${other.index}|${change.key}|${version}`)) continue;
        const held = other.running.store.get(change.key);
        // A tombstone or expired entry the peer removed past its horizon is held no more.
        const removed =
          held === undefined &&
          (change.valueJson === null || change.expiresAt != null) &&
          change.version.timestamp < other.running.store.horizon;
        if (removed) continue;
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

  #fail(check: string, node: number, atMs: number, message: string, key?: string): void {
    // The same broken state seen again at a later step is one violation, not one per step.
    const id = `${check}|${node}|${message}`;
    if (this.#reported.has(id) || this.violations.length >= VIOLATIONS_MAX) return;
    this.#reported.add(id);
    this.violations.push({ check, node, atMs, message, ...(key === undefined ? {} : { key }) });
  }
}
