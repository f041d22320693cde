/**
 * Digest resync with one peer, in both directions. Compare store hashes; if
 * they differ, find the differing groups, then buckets (two-level exchange),
 * and move only what differs: a bucket empty on one side is copied whole; a
 * bucket held by both sides is diffed by key summaries (key + version) and
 * only the newer entries move, each way. Everything goes in bounded chunks.
 */
import type { Logger } from 'pino';
import { replicationLimits as bounds, limits } from '../limits.ts';
import type { StorePool } from '../pool.ts';
import type { PeerTransport } from '../replication/peer-transport.ts';
import { pushRefusing } from '../replication/push-refusals.ts';
import { BUCKETS_PER_GROUP, type BucketDigest } from '../store/digest.ts';
import { compareMergeOrder } from '../store/merge-order.ts';
import type { Entry, Mutation, MutationResult } from '../store/types.ts';
import { entryJson, replicateBody } from '../store/wire.ts';
import { parseVersion } from '../version.ts';
import { PageGuard, PeerBadAnswerError, rowsAllowed } from './page-guard.ts';
import {
  type BucketCursor,
  parseBucketSums,
  parseDigest,
  parseRows,
  parseServed,
  parseSummaries,
  type Summary,
} from './sync-wire.ts';

export interface ResyncStore {
  readonly nodeId: string;
  readonly dbPath: string;
  readonly digest: BucketDigest;
  get(key: string): Entry | undefined;
}

export interface ResyncDeps {
  readonly store: ResyncStore;
  readonly pool: StorePool;
  readonly submit: (mutations: readonly Mutation[]) => Promise<MutationResult[]>;
  readonly log: Logger;
  readonly valueBytesMax: number;
  /** Our own backlog toward the peer (changes it has not acknowledged). */
  readonly localBacklog: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly deferMs: number;
  /** The highest version timestamp we accept now; entries further ahead are skipped. */
  readonly timestampMax: () => number;
  /** Yield to a peer that is resyncing itself (false for a node that just started). */
  readonly yieldToBusyPeer: boolean;
  /** Monotonic clock (performance.now()), for the resync's deadline. */
  readonly monoMs: () => number;
  /** The deadline before any row is counted: a few peer timeouts. */
  readonly deadlineBaseMs: number;
  /** Live entries of the peer refused as older than our tombstone horizon. */
  readonly behindHorizon?: (from: string, count: number) => void;
  /** Entries moved (sent and taken), as they move: what a peer yielding to us sees grow. */
  readonly onMoved?: (entries: number) => void;
}

interface DifferingBucket {
  readonly bucket: number;
  readonly localCount: number;
  readonly remoteCount: number;
  /** The peer's bucket sum, as /sync/buckets gave it. */
  readonly remoteSum?: number;
}

export interface ResyncReport {
  /** `deferred`: the peer was busy resyncing itself and will come to us; nothing moved. */
  readonly result: 'equal' | 'synced' | 'deferred';
  /** Deferred: the entries the busy peer's resyncs had moved, as it said (see DigestAnswer). */
  readonly peerResyncMoved?: number;
  readonly bucketsDiffering: number;
  readonly entriesSent: number;
  readonly entriesReceived: number;
  /** Entries the peer refused (skipped; reported, not retried in this run). */
  readonly entriesRefused: number;
  /** Entries of ours the peer refused as older than its tombstone horizon (we must be rebuilt). */
  readonly entriesBehindHorizon: number;
  /** Writes of a removed member the peer would not take from us (src/tombstones/removed-members.ts). */
  readonly entriesOfRemoved: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /** Differing buckets that replication brought level before their key summaries were asked for. */
  readonly bucketsLevelled: number;
}

export class Resync {
  readonly #deps: ResyncDeps;
  readonly #client: PeerTransport;
  readonly #peerNodeId: string;
  readonly #report = {
    entriesSent: 0,
    entriesReceived: 0,
    entriesRefused: 0,
    entriesBehindHorizon: 0,
    entriesOfRemoved: 0,
    bytesSent: 0,
    bytesReceived: 0,
    bucketsLevelled: 0,
  };
  #entriesTotal = 0;
  #lastProgressMonoMs = Number.NEGATIVE_INFINITY;
  #deadlineMonoMs = Number.POSITIVE_INFINITY;

  constructor(deps: ResyncDeps, client: PeerTransport, peerNodeId: string) {
    this.#deps = deps;
    this.#client = client;
    this.#peerNodeId = peerNodeId;
  }

  async run(): Promise<ResyncReport> {
    const groups = await this.#differingGroups();
    if (typeof groups === 'object' && 'deferred' in groups) {
      const said = groups.deferred === undefined ? {} : { peerResyncMoved: groups.deferred };
      return { result: 'deferred', bucketsDiffering: 0, ...said, ...this.#report };
    }
    if (groups.length === 0) return { result: 'equal', bucketsDiffering: 0, ...this.#report };
    // The clock starts once waiting for in-flight replication is over (that wait has its own bound).
    this.#deadlineMonoMs = this.#deps.monoMs() + this.#deps.deadlineBaseMs;
    const buckets = await this.#differingBuckets(groups);
    this.#entriesTotal = buckets.reduce((sum, b) => sum + Math.max(b.localCount, b.remoteCount), 0);
    this.#deadlineMonoMs += this.#entriesTotal * bounds.resyncDeadlineMsPerRow;
    for (const round of planRounds(buckets)) {
      await this.#syncBuckets(round);
      this.#progress(false);
    }
    this.#progress(true);
    return { result: 'synced', bucketsDiffering: buckets.length, ...this.#report };
  }

  /** Waits (a bounded number of times) for in-flight replication, then compares groups. */
  async #differingGroups(): Promise<number[] | { deferred: number | undefined }> {
    for (let attempt = 0; ; attempt += 1) {
      const answer = await this.#call('GET', `/sync/digest?from=${this.#deps.store.nodeId}`);
      const remote = parseDigest(answer);
      if (remote.nodeId !== this.#peerNodeId) throw new Error('peer node id changed during resync');
      if (remote.root === this.#deps.store.digest.root()) return [];
      if (remote.resyncing && this.#deps.yieldToBusyPeer) return { deferred: remote.resyncMoved };
      const settling = remote.backlog > 0 || this.#deps.localBacklog() > 0;
      if (settling && attempt < bounds.resyncDefersMax) {
        await this.#deps.sleep(this.#deps.deferMs);
        continue;
      }
      const local = this.#deps.store.digest.groupHashes();
      return local.flatMap((hash, group) => (hash === remote.groups[group] ? [] : [group]));
    }
  }

  async #differingBuckets(groups: number[]) {
    const answer = await this.#call('POST', '/sync/buckets', JSON.stringify({ groups }));
    const remote = parseBucketSums(answer, groups);
    const digest = this.#deps.store.digest;
    const differing: DifferingBucket[] = [];
    for (const group of groups) {
      for (
        let bucket = group * BUCKETS_PER_GROUP;
        bucket < (group + 1) * BUCKETS_PER_GROUP;
        bucket += 1
      ) {
        const theirs = remote.get(bucket)!;
        if (theirs.sum === digest.sums[bucket]) continue;
        differing.push({
          bucket,
          localCount: digest.counts[bucket]!,
          remoteCount: theirs.count,
          remoteSum: theirs.sum,
        });
      }
    }
    return differing;
  }

  async #syncBuckets(buckets: DifferingBucket[]) {
    const pushWhole = buckets.filter((b) => b.remoteCount === 0).map((b) => b.bucket);
    const pullWhole = buckets.filter((b) => b.localCount === 0 && b.remoteCount > 0);
    const mixed = buckets.filter((b) => b.localCount > 0 && b.remoteCount > 0);
    await this.#pushBuckets(pushWhole);
    if (pullWhole.length > 0) await this.#pullBuckets(pullWhole);
    if (mixed.length > 0) await this.#diffBuckets(mixed);
  }

  /** Holds a paged read of these buckets to the rows the peer declared in them. */
  #guard(buckets: DifferingBucket[]): PageGuard {
    const declared = buckets.reduce((sum, b) => sum + b.remoteCount, 0);
    const rowsMax = rowsAllowed(
      declared,
      bounds.resyncRowsMarginMin,
      bounds.resyncRowsMarginFraction,
    );
    return new PageGuard(
      buckets.map((b) => b.bucket),
      rowsMax,
    );
  }

  async #pushBuckets(buckets: number[]): Promise<void> {
    let after: BucketCursor | null = null;
    while (buckets.length > 0) {
      const rows = await this.#deps.pool.rows({
        kind: 'bucket-rows',
        dbPath: this.#deps.store.dbPath,
        buckets,
        after,
        withValues: true,
        rowsMax: bounds.resyncRowsPerRequest,
        bytesMax: bounds.resyncBytesPerRequest,
      });
      if (rows.count > 0) await this.#push(rows.json, rows.count);
      if (!rows.nextBucket) return;
      after = rows.nextBucket;
    }
  }

  async #pullBuckets(differing: DifferingBucket[]): Promise<void> {
    const buckets = differing.map((b) => b.bucket);
    const guard = this.#guard(differing);
    const fetchPage = async (after: BucketCursor | null) => {
      const answer = await this.#call(
        'POST',
        '/sync/rows',
        JSON.stringify({ buckets, after, values: true }),
      );
      const page = parseRows(answer, this.#deps.valueBytesMax, true, this.#deps.timestampMax());
      guard.accept(page.entries, page.next);
      return page;
    };
    // The next page is asked for while this one merges: one request ahead, so the
    // peer's read and the wire overlap our commit (bench/ANALYSIS.md, "The wiped peer's rebuild").
    let next = fetchPage(null);
    for (;;) {
      const page = await next;
      if (page.next) {
        next = fetchPage(page.next);
        // Awaited on the next turn; a merge that throws first must not leave it unhandled.
        next.catch(() => {});
      }
      await this.#merge(page.entries);
      if (!page.next) return;
    }
  }

  /**
   * Exchanges key summaries of buckets both sides hold; moves only what wins the
   * merge. Ours are read first: replication may bring a bucket level meanwhile
   * (a restarted node's peers push what it missed while it resyncs, and its pool
   * may be busy with the start-up scrub), and the peer's summaries of a bucket
   * that now sums as the peer's did are not asked for (bench/ANALYSIS.md, "A
   * restarted peer's resync racing its peers' senders").
   */
  async #diffBuckets(found: DifferingBucket[]): Promise<void> {
    let local = await this.#localSummaries(found.map((b) => b.bucket));
    const sums = this.#deps.store.digest.sums;
    const differing = found.filter(
      (b) => b.remoteSum === undefined || sums[b.bucket] !== b.remoteSum,
    );
    this.#report.bucketsLevelled += found.length - differing.length;
    if (differing.length === 0) return;
    const buckets = differing.map((b) => b.bucket);
    if (differing.length < found.length) local = await this.#localSummaries(buckets);
    const remote = await this.#remoteSummaries(buckets, this.#guard(differing));
    const toPull: string[] = [];
    for (const [key, theirs] of remote) {
      const mine = local.get(key);
      if (!mine || compareMergeOrder(theirs, mine) > 0) toPull.push(key);
    }
    const toPush: string[] = [];
    for (const [key, mine] of local) {
      const theirs = remote.get(key);
      if (!theirs || compareMergeOrder(mine, theirs) > 0) toPush.push(key);
    }
    for (let index = 0; index < toPull.length; ) {
      const keys = fetchBatch(toPull, index, limits.syncBodyBytesMax);
      const answer = await this.#call('POST', '/sync/fetch', JSON.stringify({ keys }));
      const served = parseServed(answer, keys.length);
      const entries = parseRows(
        answer,
        this.#deps.valueBytesMax,
        true,
        this.#deps.timestampMax(),
      ).entries;
      const asked = new Set(keys.slice(0, served));
      if (entries.length > served || !entries.every((entry) => asked.has(entry.key))) {
        throw new PeerBadAnswerError('peer answered a fetch with keys it was not asked for');
      }
      await this.#merge(entries);
      index += served;
    }
    await this.#pushKeys(toPush);
  }

  /** Pushes our entries of `keys` in pages cut like a worker's (rows and bytes), to fit /replicate. */
  async #pushKeys(keys: readonly string[]): Promise<void> {
    let parts: string[] = [];
    let bytes = 0;
    for (const key of keys) {
      const entry = this.#deps.store.get(key);
      if (!entry) continue;
      const json = entryJson(entry);
      parts.push(json);
      bytes += Buffer.byteLength(json) + 1;
      if (parts.length >= bounds.fetchKeysMax || bytes >= bounds.resyncBytesPerRequest) {
        await this.#push(parts.join(','), parts.length);
        parts = [];
        bytes = 0;
      }
    }
    if (parts.length > 0) await this.#push(parts.join(','), parts.length);
  }

  async #remoteSummaries(buckets: number[], guard: PageGuard): Promise<Map<string, Summary>> {
    const summaries = new Map<string, Summary>();
    let after: BucketCursor | null = null;
    for (;;) {
      const answer = await this.#call(
        'POST',
        '/sync/rows',
        JSON.stringify({ buckets, after, values: false }),
      );
      const page = parseSummaries(answer, this.#deps.valueBytesMax, this.#deps.timestampMax());
      guard.accept(
        [...page.summaries.keys()].map((key) => ({ key })),
        page.next,
      );
      for (const [key, summary] of page.summaries) summaries.set(key, summary);
      if (!page.next) return summaries;
      after = page.next;
    }
  }

  async #localSummaries(buckets: number[]): Promise<Map<string, Summary>> {
    const summaries = new Map<string, Summary>();
    let after: BucketCursor | null = null;
    for (;;) {
      const rows = await this.#deps.pool.rows({
        kind: 'bucket-rows',
        dbPath: this.#deps.store.dbPath,
        buckets,
        after,
        withValues: false,
        rowsMax: bounds.resyncRowsPerRequest,
        bytesMax: bounds.resyncBytesPerRequest,
      });
      const parsed = JSON.parse(`[${rows.json}]`) as {
        key: string;
        version: string;
        hash: number;
      }[];
      for (const row of parsed) {
        summaries.set(row.key, { version: parseVersion(row.version)!, hash: row.hash });
      }
      if (!rows.nextBucket) return summaries;
      after = rows.nextBucket;
    }
  }

  /** Pushes entries to the peer; ones it refuses are skipped and counted, not retried. */
  async #push(entriesJson: string, count: number): Promise<void> {
    this.#checkDeadline();
    const outcome = await pushRefusing(entriesJson, count, async (json) => {
      const body = replicateBody(this.#deps.store.nodeId, json, true);
      const answer = await this.#client.call('POST', '/replicate', body);
      this.#report.bytesSent += Buffer.byteLength(body);
      const counts = answer.json as { behindHorizon?: unknown; removedMember?: unknown } | null;
      const behind = counts?.behindHorizon;
      if (typeof behind === 'number' && behind > 0) this.#report.entriesBehindHorizon += behind;
      const ofRemoved = counts?.removedMember;
      if (typeof ofRemoved === 'number' && ofRemoved > 0)
        this.#report.entriesOfRemoved += ofRemoved;
    });
    this.#report.entriesSent += outcome.delivered;
    this.#deps.onMoved?.(outcome.delivered);
    if (outcome.refused.length === 0) return;
    this.#report.entriesRefused += outcome.refused.length;
    this.#deps.log.warn(
      { refused: outcome.refused.length, first: outcome.refused[0] },
      'peer refused entries of a resync; skipped them and sent the rest',
    );
  }

  async #merge(entries: Entry[]): Promise<void> {
    if (entries.length === 0) return;
    const source = this.#peerNodeId;
    const results = await this.#deps.submit(
      entries.map((entry) => ({ kind: 'remote', entry, sourceNodeId: source })),
    );
    this.#report.entriesReceived += entries.length;
    this.#deps.onMoved?.(entries.length);
    const behind = results.filter((result) => result.refused === 'behind-horizon').length;
    if (behind > 0) this.#deps.behindHorizon?.(source, behind);
  }

  async #call(method: 'GET' | 'POST', path: string, body?: string): Promise<unknown> {
    this.#checkDeadline();
    const answer = await this.#client.call(method, path, body);
    this.#report.bytesReceived += answer.bytes;
    if (body) this.#report.bytesSent += Buffer.byteLength(body);
    return answer.json;
  }

  /** The slot is not held past the deadline, however slowly (but validly) the peer answers. */
  #checkDeadline(): void {
    if (this.#deps.monoMs() > this.#deadlineMonoMs) {
      throw new PeerBadAnswerError('resync passed its deadline (peer too slow)');
    }
  }

  #progress(final: boolean): void {
    const now = this.#deps.monoMs();
    if (!final && now - this.#lastProgressMonoMs < bounds.resyncProgressLogMs) return;
    this.#lastProgressMonoMs = now;
    const done = this.#report.entriesSent + this.#report.entriesReceived;
    if (!final && this.#entriesTotal < bounds.resyncProgressEntriesMin) return;
    this.#deps.log.info(
      {
        peer: this.#client.url,
        entriesDone: done,
        entriesTotal: this.#entriesTotal,
        ...this.#report,
      },
      final ? 'resync transfer done' : 'resync progress',
    );
  }
}

/** The framing of a POST /sync/fetch body around its keys: `{"keys":[]}`. */
export const FETCH_BODY_FRAMING_BYTES = 11;

/**
 * The keys of one POST /sync/fetch, from `start`: at most fetchKeysMax, and a
 * body within the route's limit (`bodyBytesMax`) however long the keys are
 * (2,000 keys of 1 KiB would be 2 MiB). Always at least one key: a single key
 * fits (assertLimitRelations checks it), so the loop over batches moves on.
 */
export function fetchBatch(keys: readonly string[], start: number, bodyBytesMax: number): string[] {
  const batch: string[] = [];
  let bytes = FETCH_BODY_FRAMING_BYTES;
  for (let index = start; index < keys.length && batch.length < bounds.fetchKeysMax; index += 1) {
    const keyBytes = Buffer.byteLength(JSON.stringify(keys[index])) + 1;
    if (batch.length > 0 && bytes + keyBytes > bodyBytesMax) break;
    batch.push(keys[index]!);
    bytes += keyBytes;
  }
  return batch;
}

/**
 * Cuts the differing buckets into rounds of at most resyncBucketsPerRound
 * buckets and resyncRoundRowsMax rows (counted on the larger side), so the key
 * summaries of one round stay bounded. A bucket the peer says holds more than
 * a round's rows is not believed.
 */
export function planRounds(buckets: readonly DifferingBucket[]): DifferingBucket[][] {
  const rounds: DifferingBucket[][] = [];
  let round: DifferingBucket[] = [];
  let rows = 0;
  for (const bucket of buckets) {
    const size = Math.max(bucket.localCount, bucket.remoteCount);
    if (bucket.remoteCount > bounds.resyncRoundRowsMax) {
      throw new PeerBadAnswerError(`peer declared ${bucket.remoteCount} rows in one bucket`);
    }
    if (
      round.length > 0 &&
      (round.length >= bounds.resyncBucketsPerRound || rows + size > bounds.resyncRoundRowsMax)
    ) {
      rounds.push(round);
      round = [];
      rows = 0;
    }
    round.push(bucket);
    rows += size;
  }
  if (round.length > 0) rounds.push(round);
  return rounds;
}
