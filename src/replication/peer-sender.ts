/**
 * Streams this node's changes to one peer from a persisted cursor over the
 * local change sequence. Batches are bounded in rows and bytes; up to
 * `batchesInFlightMax` are pipelined, the cursor moves only over batches the
 * peer acknowledged (after its commit), and is written to disk at a steady
 * pace, so whatever the peer missed — while it was down, or while this node
 * was restarting — is delivered later without a full resync. Only changes
 * this node originated are sent (every node pushes its own writes to every
 * peer), so nothing is echoed back or relayed twice; what a pairwise link
 * missed in a partial partition is repaired by the digest resync.
 */
import assert from 'node:assert/strict';
import type { Logger } from 'pino';
import { timestampToMs } from '../clock.ts';
import { replicationLimits as bounds } from '../limits.ts';
import type { StorePool } from '../pool.ts';
import { nodeRuntime, type Runtime, type TimerHandle } from '../runtime.ts';
import type { Change } from '../store/types.ts';
import { entryJson, replicateBody } from '../store/wire.ts';
import { parseVersion } from '../version.ts';
import { LagSamples } from './lag-samples.ts';
import type { PeerTransport } from './peer-transport.ts';
import { pushRefusing, type RefusedEntry } from './push-refusals.ts';

export interface SenderStore {
  readonly nodeId: string;
  readonly dbPath: string;
  readonly seq: number;
  changesSince(afterSeq: number, limit: number): Change[];
  changesOf(origin: string, afterSeq: number, throughSeq: number, limit: number): Change[];
  changesThrough(afterSeq: number, throughSeq: number): Change[];
  oldestChangeAfter(afterSeq: number): number | undefined;
  /** `level` false: the cursor jumped (a new peer) and no resync has brought the peer level yet. */
  /** `refusedLowest`: what the peer refused below the cursor, kept over a restart (see #persist). */
  peerCursor(url: string): {
    nodeId: string | null;
    cursor: number;
    level?: boolean;
    refusedLowest?: number;
  };
  setPeerCursor(
    url: string,
    nodeId: string | null,
    cursor: number,
    level?: boolean,
    refusedLowest?: number,
  ): void;
}

interface Batch {
  readonly json: string;
  readonly count: number;
  readonly bytes: number;
  readonly lastSeq: number;
  /** HLC timestamps of the oldest and newest change in the batch. */
  readonly oldestTimestamp: number;
}

interface InFlight {
  readonly toSeq: number;
  done: boolean;
}

export interface SenderStats {
  readonly active: boolean;
  readonly cursor: number;
  readonly pendingChanges: number;
  readonly oldestPendingAgeMs: number | null;
  readonly lagMsP50: number | null;
  readonly lagMsP99: number | null;
  readonly batchesSent: number;
  readonly entriesSent: number;
  readonly bytesSent: number;
  readonly failures: number;
  readonly lastError: string | null;
  /** Entries the peer refused (e.g. a value over its limit): skipped, not retried. */
  readonly refusedEntries: number;
  readonly lastRefused: (RefusedEntry & { readonly at: string }) | null;
  /** Entries the peer refused as older than its tombstone horizon (this node must be rebuilt). */
  readonly behindHorizon: number;
}

export interface SenderDeps {
  readonly store: SenderStore;
  readonly pool: StorePool;
  readonly client: PeerTransport;
  readonly log: Logger;
  readonly wallMs: () => number;
  readonly random: () => number;
  /** Timers (default: Node's); the simulator passes virtual ones. */
  readonly runtime?: Runtime;
  /** Told the replication lag of every acknowledged batch (for metrics). */
  readonly observeLagMs?: (lagMs: number) => void;
  /** Told how many entries a peer refused (for metrics). */
  readonly onRefused?: (count: number) => void;
}

export class PeerSender {
  readonly #deps: SenderDeps;
  readonly #runtime: Runtime;
  readonly #lag = new LagSamples(bounds.lagSamplesMax);
  #peerNodeId: string | null;
  #cursor: number;
  #persistedCursor: number;
  #persistedNodeId: string | null;
  #level: boolean;
  #persistedLevel: boolean;
  #jumps = 0;
  /** The lowest version timestamp among entries the peer refused since it was last settled. */
  #refusedLowest: number;
  #persistedRefusedLowest: number;
  /** Refusals so far (a resync that began before the last one settles nothing). */
  #refusals = 0;
  #readSeq: number;
  #inFlight: InFlight[] = [];
  #epoch = 0;
  #active = false;
  /** Stopped (the peer was dropped): a resync finishing later must not write its cursor back. */
  #stopped = false;
  #pumping = false;
  #scheduled = false;
  #retryTimer: TimerHandle | undefined;
  #persistTimer: TimerHandle | undefined;
  #backoffMs: number = bounds.backoffMsMin;
  #persistFailing = false;
  #stats = {
    batchesSent: 0,
    entriesSent: 0,
    bytesSent: 0,
    failures: 0,
    lastError: null as string | null,
    refusedEntries: 0,
    lastRefused: null as (RefusedEntry & { at: string }) | null,
    behindHorizon: 0,
  };

  constructor(deps: SenderDeps) {
    this.#deps = deps;
    this.#runtime = deps.runtime ?? nodeRuntime;
    const saved = deps.store.peerCursor(deps.client.url);
    this.#peerNodeId = saved.nodeId;
    this.#cursor = saved.cursor;
    this.#persistedCursor = saved.cursor;
    this.#persistedNodeId = saved.nodeId;
    this.#level = saved.level ?? true;
    this.#persistedLevel = this.#level;
    this.#refusedLowest = saved.refusedLowest ?? Number.POSITIVE_INFINITY;
    this.#persistedRefusedLowest = this.#refusedLowest;
    this.#readSeq = saved.cursor;
  }

  /**
   * Whether the peer holds everything up to the cursor: false from a jump of
   * the cursor (a new or wiped peer) until a resync brought the peer level.
   * The tombstone horizon trusts a cursor only when it is (src/tombstones/).
   */
  get level(): boolean {
    return this.#level;
  }

  /**
   * Below this timestamp the cursor says what the peer holds: the lowest
   * version it refused (skipped, re-offered by a resync) since it was last
   * settled; +Infinity when none.
   */
  get refusedLowest(): number {
    return this.#refusedLowest;
  }

  get refusals(): number {
    return this.#refusals;
  }

  /** A resync that began at `refusals` refusals delivered everything: what was refused is held now. */
  settleRefusals(refusals: number): void {
    if (refusals === this.#refusals) this.#refusedLowest = Number.POSITIVE_INFINITY;
  }

  /** How many times the cursor jumped (a resync that began before the last jump proves nothing). */
  get jumps(): number {
    return this.#jumps;
  }

  /** A resync that began at `jumps` jumps has finished: the peer is level if none came since. */
  markLevel(jumps: number): void {
    if (this.#level || jumps !== this.#jumps) return;
    this.#level = true;
    this.#persist();
  }

  /** Our change sequence the peer has acknowledged (everything up to it was committed there). */
  get cursor(): number {
    return this.#cursor;
  }

  get peerNodeId(): string | null {
    return this.#peerNodeId;
  }

  /** Changes not yet acknowledged (sequence positions after the cursor). */
  get pending(): number {
    return Math.max(0, this.#deps.store.seq - this.#cursor);
  }

  /**
   * The peer answered pings as `nodeId`. Returns true when its cursor could not
   * be trusted (a new or wiped peer): the cursor then jumps to our current
   * sequence and the caller must bring the peer level with a digest resync.
   */
  activate(nodeId: string): boolean {
    const fresh = this.#peerNodeId !== nodeId;
    if (fresh) {
      this.#peerNodeId = nodeId;
      this.#level = false;
      this.#jumps += 1;
      this.#cursor = this.#deps.store.seq;
      this.#readSeq = this.#cursor;
      this.#inFlight = [];
      this.#epoch += 1;
      this.#persist();
    }
    this.#active = true;
    this.#stopped = false;
    this.#persistTimer ??= this.#runtime.setInterval(
      () => this.#persist(),
      bounds.cursorPersistMs,
      true,
    );
    this.notify();
    return fresh;
  }

  deactivate(): void {
    this.#active = false;
    this.#abandonInFlight();
  }

  /** New local commits: push them soon (coalesced to one pump per turn). */
  notify(): void {
    if (this.#scheduled || !this.#active) return;
    this.#scheduled = true;
    this.#runtime.setImmediate(() => {
      this.#scheduled = false;
      this.#pump().catch((error: unknown) => this.#failed(error, this.#epoch));
    });
  }

  stats(): SenderStats {
    const oldest = this.#deps.store.oldestChangeAfter(this.#cursor);
    return {
      active: this.#active,
      cursor: this.#cursor,
      pendingChanges: this.pending,
      oldestPendingAgeMs:
        oldest === undefined ? null : Math.max(0, this.#deps.wallMs() - timestampToMs(oldest)),
      lagMsP50: this.#lag.percentile(50),
      lagMsP99: this.#lag.percentile(99),
      ...this.#stats,
    };
  }

  /** Stops sending and writes the cursor down. */
  stop(): void {
    this.#active = false;
    this.#runtime.clearTimeout(this.#retryTimer);
    this.#runtime.clearInterval(this.#persistTimer);
    this.#persistTimer = undefined;
    this.#epoch += 1;
    this.#persist();
    this.#stopped = true;
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#active && this.#inFlight.length < bounds.batchesInFlightMax) {
        const backlog = this.#deps.store.seq - this.#readSeq;
        if (backlog <= 0) break;
        // Pipeline only full batches; a partial one waits for the one in flight.
        if (this.#inFlight.length > 0 && backlog < bounds.batchRowsMax) break;
        const epoch = this.#epoch;
        const batch = await this.#readBatch(this.#readSeq, backlog);
        if (epoch !== this.#epoch || !this.#active) break;
        const slot: InFlight = { toSeq: batch.lastSeq, done: false };
        this.#readSeq = batch.lastSeq;
        this.#inFlight.push(slot);
        if (batch.count === 0) {
          slot.done = true;
          this.#advance();
          continue;
        }
        this.#send(batch, slot, epoch);
      }
    } finally {
      this.#pumping = false;
    }
  }

  #send(batch: Batch, slot: InFlight, epoch: number): void {
    const push = (entriesJson: string): Promise<void> => {
      const body = replicateBody(this.#deps.store.nodeId, entriesJson, false);
      return this.#deps.client.call('POST', '/replicate', body).then((answer) => {
        this.#stats.bytesSent += Buffer.byteLength(body);
        this.#noteBehindHorizon(answer.json);
      });
    };
    pushRefusing(batch.json, batch.count, push).then(
      (outcome) => {
        if (epoch !== this.#epoch) return;
        if (outcome.refused.length > 0) this.#noteRefused(outcome.refused);
        slot.done = true;
        this.#stats.batchesSent += 1;
        this.#stats.entriesSent += outcome.delivered;
        const lagMs = Math.max(0, this.#deps.wallMs() - timestampToMs(batch.oldestTimestamp));
        this.#lag.add(lagMs);
        this.#deps.observeLagMs?.(lagMs);
        this.#backoffMs = bounds.backoffMsMin;
        this.#advance();
        this.notify();
      },
      (error: unknown) => this.#failed(error, epoch),
    );
  }

  /**
   * The peer refused live entries of ours as older than its tombstone horizon:
   * this node holds data the cluster has removed (it, or the backup it was
   * restored from, is older than what was removed). Say so, loudly and once.
   */
  #noteBehindHorizon(answer: unknown): void {
    const count = (answer as { behindHorizon?: unknown } | null)?.behindHorizon;
    if (typeof count !== 'number' || count <= 0) return;
    this.#stats.behindHorizon += count;
    if (this.#stats.behindHorizon === count) {
      this.#deps.log.error(
        { refused: count },
        'peer refused entries older than its tombstone horizon: this node holds data the cluster removed; rebuild it from its peers (stop it, empty its --data-dir, start it with --join)',
      );
    }
  }

  /** Entries the peer refused were skipped (not retried): count them and say so once per batch. */
  #noteRefused(refused: readonly RefusedEntry[]): void {
    this.#stats.refusedEntries += refused.length;
    this.#refusals += 1;
    for (const entry of refused) {
      const timestamp = parseVersion(entry.version)?.timestamp ?? 0;
      this.#refusedLowest = Math.min(this.#refusedLowest, timestamp);
    }
    this.#stats.lastRefused = {
      ...refused.at(-1)!,
      at: new Date(this.#deps.wallMs()).toISOString(),
    };
    this.#deps.log.warn(
      { refused: refused.length, first: refused[0] },
      'peer refused entries; skipped them and sent the rest',
    );
    this.#deps.onRefused?.(refused.length);
  }

  /**
   * Reads the next batch. A read that found no change at all after `afterSeq`
   * ends at the sequence as it was before the read: the positions between are
   * gaps (rows removed past the tombstone horizon), and the cursor moves over
   * them.
   */
  async #readBatch(afterSeq: number, backlog: number): Promise<Batch> {
    const seqBefore = this.#deps.store.seq;
    const batch = await this.#readChanges(afterSeq, backlog);
    return batch.lastSeq === afterSeq ? { ...batch, lastSeq: seqBefore } : batch;
  }

  async #readChanges(afterSeq: number, backlog: number): Promise<Batch> {
    const origin = this.#deps.store.nodeId;
    if (backlog >= bounds.workerBacklogMin) {
      const rows = await this.#deps.pool.rows({
        kind: 'change-range',
        dbPath: this.#deps.store.dbPath,
        afterSeq,
        throughSeq: this.#deps.store.seq,
        scanSeqsMax: bounds.scanSeqsWorker,
        originNodeId: origin,
        rowsMax: 4 * bounds.batchRowsMax, // checked against replicateEntriesMax in limits.ts
        bytesMax: bounds.batchBytesMax,
      });
      // A worker reads no timestamps; the batch's age is taken from its first change.
      const oldest = this.#deps.store.changesSince(afterSeq, 1)[0]?.version.timestamp ?? 0;
      return {
        json: rows.json,
        count: rows.count,
        bytes: rows.bytes,
        lastSeq: rows.lastSeq,
        oldestTimestamp: oldest,
      };
    }
    return this.#readBatchInline(afterSeq, origin);
  }

  /**
   * Reads up to a batch's worth of our changes from a window of seqs (others'
   * changes came from peers and are not sent on); never ends inside an atomic
   * batch (a client's POST /batch), whose remaining changes are then read
   * too, so the peer applies it in one request and one transaction.
   */
  #readBatchInline(afterSeq: number, origin: string): Batch {
    const parts: string[] = [];
    let bytes = 0;
    let lastSeq = afterSeq;
    let openBatchEnd = afterSeq;
    let oldestTimestamp = Number.MAX_SAFE_INTEGER;
    const take = (change: Change): void => {
      lastSeq = change.seq;
      openBatchEnd = Math.max(openBatchEnd, change.batchEndSeq ?? 0);
      if (change.sourceNodeId !== origin) return;
      const json = entryJson(change);
      parts.push(json);
      bytes += Buffer.byteLength(json) + 1;
      oldestTimestamp = Math.min(oldestTimestamp, change.version.timestamp);
    };
    const store = this.#deps.store;
    const windowEnd = Math.min(store.seq, afterSeq + bounds.scanSeqsInline);
    const changes = store.changesOf(origin, afterSeq, windowEnd, bounds.batchRowsMax);
    let cut = false;
    for (const change of changes) {
      take(change);
      cut = bytes >= bounds.batchBytesMax && lastSeq >= openBatchEnd;
      if (cut) break;
    }
    // Fewer of ours than asked for: the whole window is read.
    if (!cut && changes.length < bounds.batchRowsMax) lastSeq = Math.max(lastSeq, windowEnd);
    if (lastSeq < openBatchEnd) {
      for (const change of this.#deps.store.changesThrough(lastSeq, openBatchEnd)) take(change);
      lastSeq = openBatchEnd;
    }
    return { json: parts.join(','), count: parts.length, bytes, lastSeq, oldestTimestamp };
  }

  #advance(): void {
    while (this.#inFlight[0]?.done) {
      const toSeq = this.#inFlight.shift()!.toSeq;
      assert.ok(toSeq >= this.#cursor, 'the cursor only moves forward');
      assert.ok(toSeq <= this.#deps.store.seq, 'the cursor never passes the sequence');
      this.#cursor = toSeq;
    }
  }

  #abandonInFlight(): void {
    this.#epoch += 1;
    this.#inFlight = [];
    this.#readSeq = this.#cursor;
  }

  #failed(error: unknown, epoch: number): void {
    if (epoch !== this.#epoch) return;
    this.#stats.failures += 1;
    const message = error instanceof Error ? error.message : String(error);
    if (this.#stats.lastError !== message)
      this.#deps.log.warn({ err: message }, 'push to peer failed');
    this.#stats.lastError = message;
    this.#abandonInFlight();
    const delay = this.#backoffMs * (0.5 + this.#deps.random());
    this.#backoffMs = Math.min(bounds.backoffMsMax, this.#backoffMs * 2);
    this.#runtime.clearTimeout(this.#retryTimer);
    this.#retryTimer = this.#runtime.setTimeout(() => this.notify(), delay, true);
  }

  /**
   * Writes the cursor down when it moved. A failure (a full disk) is logged
   * once and retried on the next persist tick: the cursor in memory stays
   * right, and a cursor left behind on disk only means resending what the
   * peer already has (the merge is idempotent). What the peer refused below
   * the cursor is written with it: after a restart the acknowledgement is
   * still held below it until a resync delivers it (simulator seed 47652: a
   * restart forgot a refusal, the horizon passed the refused write, and the
   * peer then refused it for good as older than its horizon).
   */
  #persist(): void {
    if (this.#stopped) return;
    if (
      this.#cursor === this.#persistedCursor &&
      this.#peerNodeId === this.#persistedNodeId &&
      this.#level === this.#persistedLevel &&
      this.#refusedLowest === this.#persistedRefusedLowest
    )
      return;
    const level = this.#level;
    const refusedLowest = this.#refusedLowest;
    try {
      this.#deps.store.setPeerCursor(
        this.#deps.client.url,
        this.#peerNodeId,
        this.#cursor,
        level,
        refusedLowest,
      );
    } catch (error) {
      if (!this.#persistFailing) {
        this.#deps.log.warn({ err: error }, 'cursor not persisted; will retry');
      }
      this.#persistFailing = true;
      return;
    }
    if (this.#persistFailing) this.#deps.log.info('cursor persisted again');
    this.#persistFailing = false;
    this.#persistedCursor = this.#cursor;
    this.#persistedNodeId = this.#peerNodeId;
    this.#persistedLevel = level;
    this.#persistedRefusedLowest = refusedLowest;
  }
}
