/**
 * Removes tombstones and expired entries once they are stable (see
 * stability.ts for the rule). Every period it works out this node's
 * acknowledgement report from its senders' cursors, raises the horizon as far
 * as every member's reports allow, and removes what lies below it in bounded
 * batches, one per turn, so writes and reads keep flowing.
 */
import type { Logger } from 'pino';
import { timestampToMs } from '../clock.ts';
import { nodeRuntime, type Runtime, type TimerHandle } from '../runtime.ts';
import type { Removal } from './removed-members.ts';
import { type AckReport, completeBelow, nextHorizon, stableBelow } from './stability.ts';

export interface CollectorStore {
  readonly nodeId: string;
  readonly horizon: number;
  /** The last change sequence issued (a pending scan is redone only when it or the cursor moved). */
  readonly seq: number;
  /** Rows without a value: tombstones and swept expired entries. */
  readonly deadRows: number;
  raiseHorizon(horizon: number): boolean;
  removeBelowHorizon(limit: number): number;
  ownPendingLowest(cursor: number, limit: number): number | null | undefined;
  clockFloor(): number;
}

/** What the collector needs of a peer (src/supervisor.ts's Peer). */
export interface CollectorPeer {
  readonly nodeId: string | null;
  /** `self`: the peer is this node (it is skipped). */
  readonly state: string;
  /** Our change sequence the peer acknowledged, and whether the cursor is backed by a resync. */
  readonly sender: {
    readonly cursor: number;
    readonly level: boolean;
    /** The lowest version the peer refused (skipped by the cursor) and has not been given since. */
    readonly refusedLowest: number;
  };
  /** The peer's last acknowledgement report (from its ping), if any. */
  readonly ackReport: AckReport | null;
  /** Our last whole resync with it (src/supervisor.ts): when it started, and the peer's id. */
  readonly wholeResync: { readonly startedMonoMs: number; readonly nodeId: string } | null;
}

/** What the collector needs of the removed members (src/tombstones/removed-members.ts). */
export interface CollectorRemovals {
  removals(): readonly Removal[];
  pauseReason(): string | null;
  release(removal: Removal): void;
}

export interface CollectorDeps<P extends CollectorPeer = CollectorPeer> {
  readonly store: CollectorStore;
  /** The current members other than this node: the peers this node replicates to. */
  readonly peers: () => readonly P[];
  readonly graceMs: number;
  readonly intervalMs: number;
  /**
   * Removed members: while one is not released (its writes may be held by some
   * members and not others) the horizon waits; see removed-members.ts.
   */
  readonly removed?: CollectorRemovals;
  /** How long after its removal a removed member may still come back with all it holds (not released before). */
  readonly removedMemberHoldMs?: number;
  /** Asks for a resync with a peer not yet covered for a removal (src/supervisor.ts). */
  readonly wantResync?: (peer: P) => void;
  readonly wallMs: () => number;
  readonly log: Logger;
  readonly runtime?: Runtime;
  /** Told how many rows each batch removed (for metrics). */
  readonly onRemoved?: (count: number) => void;
}

/** Rows removed per transaction. */
const REMOVE_BATCH_ROWS = 1_000;
/** Own pending changes read per peer to find the lowest unacknowledged one. */
const PENDING_SCAN_ROWS = 10_000;
/** Stands for a member whose node id is not known yet: it has no report, so it counts 0. */
const UNKNOWN_MEMBER = 'unknown';

export class TombstoneCollector<P extends CollectorPeer = CollectorPeer> {
  readonly #deps: CollectorDeps<P>;
  readonly #runtime: Runtime;
  #report: AckReport;
  #timer: TimerHandle | undefined;
  #removing = false;
  /** Rows may lie below the horizon (it rose, or a removal stopped short). */
  #behind = true;
  /**
   * The store's dead rows when the last removal pass ended. More now may mean a row became
   * removable with the horizon where it was: an expired entry swept after the horizon passed
   * it (the sweep goes by the horizon's wall time when that runs ahead of the clock). The
   * other members dropped such an entry, so it must go here too, not at the next raise.
   */
  #deadRowsAfterRemoval = 0;
  #stopped = false;
  #stable = 0;
  #pausedReason: string | null = null;
  /** Per peer id, the last scan of our pending changes: the cursor and sequence it saw, and what it found. */
  readonly #scans = new Map<
    string,
    { cursor: number; seq: number; lowest: number | null | undefined }
  >();
  /** Per removal (`id@version`), when this node first knew of it (monotonic clock). */
  readonly #removalsKnownAt = new Map<string, number>();

  constructor(deps: CollectorDeps<P>) {
    this.#deps = deps;
    this.#runtime = deps.runtime ?? nodeRuntime;
    this.#report = { horizon: deps.store.horizon, acked: new Map() };
  }

  start(): void {
    this.#timer = this.#runtime.setInterval(
      () => {
        try {
          this.tick();
        } catch (error) {
          // The store failed (it logs a full disk itself): the next round tries again.
          this.#deps.log.warn({ err: error }, 'tombstone round failed; will retry');
        }
      },
      this.#deps.intervalMs,
      true,
    );
  }

  stop(): void {
    this.#stopped = true;
    this.#runtime.clearInterval(this.#timer);
  }

  /** What this node announces in its ping answers. */
  report(): AckReport {
    return this.#report;
  }

  /** The stable time last worked out (an HLC timestamp, 0: none yet). */
  get stable(): number {
    return this.#stable;
  }

  /** One round: our report, the horizon, and removal below it. */
  tick(): void {
    if (this.#stopped) return;
    const { store } = this.#deps;
    const peers = this.#deps.peers().filter((peer) => peer.state !== 'self');
    const acked = this.#ownAcks(peers);
    const members = [store.nodeId, ...peers.map((peer) => peer.nodeId ?? UNKNOWN_MEMBER)];
    const reports = new Map<string, AckReport>();
    for (const peer of peers) {
      if (peer.nodeId !== null && peer.ackReport) reports.set(peer.nodeId, peer.ackReport);
    }
    reports.set(store.nodeId, { horizon: store.horizon, acked });
    this.#stable = stableBelow(members, reports);
    const covered = this.#closeRemovals(peers);
    const paused = this.#deps.removed?.pauseReason() ?? null;
    if (paused !== this.#pausedReason) {
      if (paused !== null) this.#deps.log.info({ reason: paused }, 'tombstone removal paused');
      else this.#deps.log.info('tombstone removal resumed');
      this.#pausedReason = paused;
    }
    const next =
      paused !== null
        ? store.horizon
        : nextHorizon({
            current: store.horizon,
            self: store.nodeId,
            members,
            reports,
            wallMs: this.#deps.wallMs(),
            graceMs: this.#deps.graceMs,
          });
    if (store.raiseHorizon(next)) {
      this.#deps.log.debug(
        {
          horizon: new Date(timestampToMs(next)).toISOString(),
          complete: completeBelow(store.nodeId, members, reports),
        },
        'tombstone horizon raised',
      );
      this.#behind = true;
    }
    if (this.#behind || store.deadRows > this.#deadRowsAfterRemoval) this.#removeSoon();
    this.#report = { horizon: store.horizon, acked, covered };
  }

  /**
   * Stage 2 and 3 of closing a removed member's writes (removed-members.ts):
   * which members each removal is covered for here (reported to the others),
   * a resync asked for with every member not covered yet, and the release of
   * every removal every member covered toward every other.
   */
  #closeRemovals(peers: readonly P[]): Map<string, Set<string>> {
    const covered = new Map<string, Set<string>>();
    const removed = this.#deps.removed;
    if (!removed) return covered;
    const now = this.#runtime.monoMs();
    const removals = [...removed.removals()].sort(
      (a, b) => Number(a.released) - Number(b.released),
    );
    const current = new Set(removals.map((removal) => removal.key));
    for (const key of this.#removalsKnownAt.keys()) {
      if (!current.has(key)) this.#removalsKnownAt.delete(key);
    }
    const self = this.#deps.store.nodeId;
    const memberIds = peers.map((peer) => peer.nodeId);
    for (const removal of removals) {
      let knownAt = this.#removalsKnownAt.get(removal.key);
      if (knownAt === undefined) {
        knownAt = now;
        this.#removalsKnownAt.set(removal.key, now);
      }
      const ids = new Set<string>();
      for (const peer of peers) {
        const whole = peer.wholeResync;
        if (
          peer.nodeId !== null &&
          whole &&
          whole.nodeId === peer.nodeId &&
          whole.startedMonoMs >= knownAt
        ) {
          ids.add(peer.nodeId);
        } else if (!removal.released) {
          this.#deps.wantResync?.(peer);
        }
      }
      covered.set(removal.key, ids);
      // A node with no other member in its view closes nothing: it cannot tell whether the
      // others are gone or it was cut off by removals made on their side.
      if (
        removal.released ||
        removal.nodeId === self ||
        memberIds.length === 0 ||
        memberIds.some((id) => id === null)
      ) {
        continue;
      }
      if (this.#deps.wallMs() < removal.removedAtMs + (this.#deps.removedMemberHoldMs ?? 0))
        continue;
      const coversAll = (reporter: string, list: ReadonlySet<string> | undefined) =>
        list !== undefined &&
        [self, ...(memberIds as string[])].every((id) => id === reporter || list.has(id));
      const closed =
        coversAll(self, ids) &&
        peers.every((peer) => coversAll(peer.nodeId!, peer.ackReport?.covered?.get(removal.key)));
      if (closed) {
        removed.release(removal);
        this.#deps.log.info(
          { member: removal.nodeId },
          "removed member's writes are closed on every member: tombstone removal no longer waits for it",
        );
      }
    }
    return covered;
  }

  /**
   * Per target, the timestamp below which it acknowledged every write of ours:
   * for ourselves a persisted floor below all our later versions; for a peer
   * the lowest of our changes it has not acknowledged, or that floor when it
   * has them all, and never above a version it refused and has not been given
   * since. A peer whose cursor jumped (new or wiped) counts 0 until a resync
   * brought it level, and so does one too far behind to scan.
   */
  #ownAcks(peers: readonly CollectorPeer[]): Map<string, number> {
    const { store } = this.#deps;
    const floor = store.clockFloor();
    const acked = new Map<string, number>([[store.nodeId, floor]]);
    for (const peer of peers) {
      if (peer.nodeId === null) continue;
      let below = 0;
      if (peer.sender.level) {
        const lowest = this.#pendingLowest(peer.nodeId, peer.sender.cursor);
        below = lowest === undefined ? 0 : lowest === null ? floor : Math.min(lowest, floor);
        below = Math.min(below, peer.sender.refusedLowest);
      }
      acked.set(peer.nodeId, below);
    }
    return acked;
  }

  /**
   * The lowest of our changes after `cursor`, scanned again only when the cursor or the
   * sequence moved: a peer that is down keeps its cursor, and its backlog is not re-read
   * every round.
   */
  #pendingLowest(peerId: string, cursor: number): number | null | undefined {
    const seq = this.#deps.store.seq;
    const last = this.#scans.get(peerId);
    if (last && last.cursor === cursor && last.seq === seq) return last.lowest;
    const lowest = this.#deps.store.ownPendingLowest(cursor, PENDING_SCAN_ROWS);
    this.#scans.set(peerId, { cursor, seq, lowest });
    return lowest;
  }

  /** Removes what lies below the horizon, a batch per turn. */
  #removeSoon(): void {
    if (this.#removing || this.#stopped) return;
    this.#removing = true;
    const step = () => {
      if (this.#stopped) {
        this.#removing = false;
        return;
      }
      let removed = 0;
      try {
        removed = this.#deps.store.removeBelowHorizon(REMOVE_BATCH_ROWS);
      } catch (error) {
        // A full disk: the rows stay and the next round tries again.
        this.#deps.log.warn({ err: error }, 'tombstone removal failed; will retry');
        this.#removing = false;
        return;
      }
      if (removed > 0) this.#deps.onRemoved?.(removed);
      if (removed < REMOVE_BATCH_ROWS) {
        this.#removing = false;
        this.#behind = false;
        this.#deadRowsAfterRemoval = this.#deps.store.deadRows;
        return;
      }
      this.#runtime.setImmediate(step);
    };
    this.#runtime.setImmediate(step);
  }
}
