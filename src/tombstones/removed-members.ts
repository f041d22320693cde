/**
 * Removed members and tombstone removal.
 *
 * Only a node reports on its own writes (stability.ts), so once a member X is
 * removed nothing reports which of X's writes the others hold: some members
 * may hold a write of X that others never got. Removing tombstones then could
 * bring a key back, so removal pauses, until the cluster has *closed* X's writes:
 *
 * 1. From the moment a node knows X removed, it takes no more of X's writes
 *    from X itself, nor from a node that joined after the removal (it may
 *    carry a backup of X's): `admits`. Members that were in the cluster before
 *    the removal still pass X's writes on, so what any of them holds spreads.
 * 2. Each node then runs a resync of its own with every other member (or sees
 *    one finish that started after it knew): a whole resync leaves the peer
 *    holding every entry the node held when their buckets were compared, or a
 *    newer one. The node announces, per removed X, the members it covered so
 *    (`X-Peerkv-Covered`).
 * 3. Once every member, this node included, covered every other member, no
 *    member holds a write of X another lacks: any such write came, through a
 *    chain of members, from one that got it from X before it knew, and that
 *    one's resyncs, which began after it knew, handed it (or a newer version)
 *    to everyone. The node *releases* X (persisted) and removal goes on; from
 *    then on it refuses every write of X it does not hold already.
 *
 * A write of X that no member held is lost with X; a node that still offers
 * one is told to rebuild from its peers, like one older than the horizon.
 */
import { timestampToMs } from '../clock.ts';
import type { MemberRow } from '../store/types.ts';
import { parseVersion } from '../version.ts';

/** Where the release of removed members is persisted (src/store/kv-store.ts meta rows). */
export interface ReleaseStore {
  releasedRemovals(): Map<string, string>;
  releaseRemoval(nodeId: string, version: string): void;
}

export interface RemovedMembersDeps {
  /** Every member row, and a number that changes whenever the rows do. */
  readonly rows: () => readonly MemberRow[];
  readonly revision: () => number;
  readonly store: ReleaseStore;
  /** This node's id: its own removal is never released (it reports to no one then). */
  readonly selfNodeId: string;
}

/** A removed member at the version of its removal: `id@version`, the unit of release. */
export interface Removal {
  readonly nodeId: string;
  readonly version: string;
  readonly key: string;
  /** When the removal was made (wall-clock ms of its version). */
  readonly removedAtMs: number;
  readonly released: boolean;
}

export class RemovedMembers {
  readonly #deps: RemovedMembersDeps;
  readonly #released: Map<string, string>;
  #revision = Number.NaN;
  /** Removed node id -> timestamp of its removal. */
  #removedAt = new Map<string, number>();
  /** Node id -> timestamp of the row that last made it a member (nodes without a row: none). */
  #joinedAt = new Map<string, number>();
  #removals: Removal[] = [];
  /** Removed members released at their current removal: none of their writes is taken any more. */
  #closed = new Set<string>();

  constructor(deps: RemovedMembersDeps) {
    this.#deps = deps;
    this.#released = deps.store.releasedRemovals();
  }

  /** Removed members, released or not. */
  removals(): readonly Removal[] {
    this.#refresh();
    return this.#removals;
  }

  /** Why tombstone removal must wait (null: it need not): removed members not released yet. */
  pauseReason(): string | null {
    if (this.removals().some((removal) => removal.nodeId === this.#deps.selfNodeId)) {
      return 'this node was removed from the cluster';
    }
    const waiting = this.removals().filter((removal) => !removal.released);
    if (waiting.length === 0) return null;
    const ids = waiting.slice(0, 5).map((removal) => removal.nodeId);
    return `removed member(s) ${ids.join(', ')} not yet closed on every member`;
  }

  /** Whether the member's current removal was released: it cannot be added back with its data. */
  isClosed(nodeId: string): boolean {
    this.#refresh();
    return this.#closed.has(nodeId);
  }

  /** Persists the release of `removal`: its writes are the same on every member. */
  release(removal: Removal): void {
    if (removal.nodeId === this.#deps.selfNodeId) return;
    this.#deps.store.releaseRemoval(removal.nodeId, removal.version);
    this.#released.set(removal.nodeId, removal.version);
    this.#revision = Number.NaN;
  }

  /**
   * Whether a write by `origin`, delivered by `source`, may be applied (it would
   * win the merge). Only writes of a removed member are ever refused.
   */
  admits(origin: string, source: string): boolean {
    this.#refresh();
    const removedAt = this.#removedAt.get(origin);
    if (removedAt === undefined) return true;
    if (this.#closed.has(origin)) return false;
    if (source === origin || this.#removedAt.has(source)) return false;
    const joinedAt = this.#joinedAt.get(source);
    // A node started with --peers has no row: it was there from the start.
    return joinedAt === undefined || joinedAt < removedAt;
  }

  #refresh(): void {
    const revision = this.#deps.revision();
    if (revision === this.#revision) return;
    this.#revision = revision;
    const removedAt = new Map<string, number>();
    const joinedAt = new Map<string, number>();
    const removals: Removal[] = [];
    const closed = new Set<string>();
    for (const row of this.#deps.rows()) {
      const timestamp = parseVersion(row.version)?.timestamp ?? 0;
      if (row.state === 'member') {
        joinedAt.set(row.nodeId, timestamp);
        continue;
      }
      removedAt.set(row.nodeId, timestamp);
      const released = this.#released.get(row.nodeId) === row.version;
      if (released) closed.add(row.nodeId);
      removals.push({
        nodeId: row.nodeId,
        version: row.version,
        key: `${row.nodeId}@${row.version}`,
        removedAtMs: timestampToMs(timestamp),
        released,
      });
    }
    this.#removedAt = removedAt;
    this.#joinedAt = joinedAt;
    this.#removals = removals;
    this.#closed = closed;
  }
}
