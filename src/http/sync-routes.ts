/**
 * Peer-to-peer routes: `POST /replicate` (a batch of versioned entries, or the
 * seed's single `{"key","value"}`), the resync exchange under `/sync/`, and
 * `GET /cluster`, the node's view of itself and its peers.
 */
import { PeerkvError } from '../errors.ts';
import { limits, replicateBodyBytesMax, replicationLimits } from '../limits.ts';
import type { StorePool } from '../pool.ts';
import type { BucketDigest } from '../store/digest.ts';
import { BUCKETS_PER_GROUP } from '../store/digest.ts';
import type { Entry, Mutation, MutationResult } from '../store/types.ts';
import { entryJson } from '../store/wire.ts';
import type { SubmitOptions } from '../store/write-queue.ts';
import { parseGroups, parseKeys, parseRowsRequest, type RowsRequest } from '../sync/sync-wire.ts';
import { formatVersion, NODE_ID_PATTERN } from '../version.ts';
import type { BodyBudget } from './body-budget.ts';
import { type BodyLimits, readJson } from './read-body.ts';
import { sendJson, sendJsonText } from './respond.ts';
import type { Handler, Route } from './route.ts';
import { validateReplicate } from './validate.ts';

/** What the peer routes need from the node. */
export interface SyncService {
  readonly nodeId: string;
  readonly digest: BucketDigest;
  submit(mutations: readonly Mutation[], options?: SubmitOptions): Promise<MutationResult[]>;
  /** Mutations the write queue can still take. */
  writeRoom(): number;
  get(key: string): Entry | undefined;
  /** Bucket rows as wire JSON (built in the pool), for a resync peer. */
  bucketRows(request: RowsRequest): Promise<{ json: string; next: unknown }>;
  /** Our backlog toward the node with this id (the asker, in a resync's first step). */
  backlogFor(nodeId: string): number;
  /** Whether this node is running a resync of its own right now. */
  resyncing(): boolean;
  /** Entries this node's resyncs have moved since it started (a peer that yields watches it grow). */
  resyncMoved(): number;
  clusterStatus(): unknown;
  /** Whether batches from this node id are refused: a removed member (src/tombstones/removed-members.ts). */
  refusesSender?(from: string): boolean;
  /** Live entries from `from` refused as older than the tombstone horizon (for the log and metrics). */
  behindHorizon?(from: string, count: number): void;
}

/** `SyncService.bucketRows` over the store pool: a peer's page, within the peers' share. */
export function bucketRowsFromPool(
  pool: Pick<StorePool, 'rowsForPeer'>,
  dbPath: string,
): SyncService['bucketRows'] {
  return async (request) => {
    const rows = await pool.rowsForPeer({
      kind: 'bucket-rows',
      dbPath,
      buckets: request.buckets,
      after: request.after,
      withValues: request.values,
      rowsMax: replicationLimits.resyncRowsPerRequest,
      bytesMax: replicationLimits.resyncBytesPerRequest,
    });
    return { json: rows.json, next: rows.nextBucket };
  };
}

export interface SyncRouteOptions {
  readonly valueBytesMax: number;
  /** The highest version timestamp accepted right now (src/clock.ts). */
  readonly timestampMax: () => number;
  /** The node-wide budget of request-body bytes in flight. */
  readonly bodyBudget: BodyBudget;
}

/**
 * What each peer route does, apart from HTTP: the answer's JSON text from the
 * request's parsed body (read through `body`, so a refusal comes before a byte
 * of it is read). The routes below wrap these; the simulator (test/sim/) calls
 * them over its in-memory network, so both run the same validation and merge.
 */
export interface PeerHandlers {
  replicate(body: () => Promise<unknown>): Promise<string>;
  digest(from: unknown): string;
  buckets(body: unknown): string;
  rows(body: unknown): Promise<string>;
  fetch(body: unknown): string;
}

export function peerHandlers(
  service: SyncService,
  options: Pick<SyncRouteOptions, 'valueBytesMax' | 'timestampMax'>,
): PeerHandlers {
  const { valueBytesMax, timestampMax } = options;
  const replicateGate = { inFlight: 0 };
  const replicate = async (body: unknown): Promise<string> => {
    const payload = validateReplicate(body, valueBytesMax, timestampMax());
    if (payload.kind === 'single') {
      const [result] = await service.submit([
        { kind: 'local', key: payload.key, valueJson: payload.valueJson },
      ]);
      return JSON.stringify({ key: payload.key, version: formatVersion(result!.version) });
    }
    const from = payload.from ?? 'unknown';
    if (service.refusesSender?.(from)) {
      // The whole batch, before anything is applied: its sender keeps it pending and
      // offers it again once it is added back (a skipped entry would be lost to it).
      throw new PeerkvError('REMOVED_MEMBER', `${from} was removed from the cluster`);
    }
    // One transaction per request: an atomic batch a peer sends in one request
    // commits here all or nothing, and a failure leaves nothing half applied.
    const results = await service.submit(
      payload.entries.map((entry) => ({ kind: 'remote', entry, sourceNodeId: from })),
      { atomic: true },
    );
    const applied = results.filter((result) => result.applied).length;
    const behindHorizon = results.filter((result) => result.refused === 'behind-horizon').length;
    const removedMember = results.filter((result) => result.refused === 'removed-member').length;
    const answer: Record<string, number> = { applied, stale: results.length - applied };
    if (behindHorizon > 0) {
      service.behindHorizon?.(from, behindHorizon);
      answer.behindHorizon = behindHorizon;
    }
    // Writes of a removed member we no longer take from this sender (src/tombstones/removed-members.ts).
    if (removedMember > 0) answer.removedMember = removedMember;
    return JSON.stringify(answer);
  };
  return {
    replicate: async (body) => {
      // Checked before a byte of the body is read: the room to parse and apply it.
      if (replicateGate.inFlight >= limits.replicateConcurrentMax) {
        throw shed('too many replication batches in flight, retry later');
      }
      if (service.writeRoom() < limits.replicateEntriesMax) {
        throw shed('write queue is full, retry later');
      }
      replicateGate.inFlight += 1;
      try {
        return await replicate(await body());
      } finally {
        replicateGate.inFlight -= 1;
      }
    },
    digest: (from) =>
      JSON.stringify({
        nodeId: service.nodeId,
        root: service.digest.root(),
        groups: service.digest.groupHashes(),
        backlog:
          typeof from === 'string' && NODE_ID_PATTERN.test(from) ? service.backlogFor(from) : 0,
        resyncing: service.resyncing(),
        resyncMoved: service.resyncMoved(),
      }),
    buckets: (body) => {
      const groups = parseGroups(body);
      const buckets: [number, number, number][] = [];
      for (const group of groups) {
        for (let b = group * BUCKETS_PER_GROUP; b < (group + 1) * BUCKETS_PER_GROUP; b += 1) {
          buckets.push([b, service.digest.sums[b]!, service.digest.counts[b]!]);
        }
      }
      return JSON.stringify({ buckets });
    },
    rows: async (body) => {
      const rows = await service.bucketRows(parseRowsRequest(body));
      return `{"rows":[${rows.json}],"next":${JSON.stringify(rows.next)}}`;
    },
    fetch: (body) => {
      const keys = parseKeys(body, replicationLimits.fetchKeysMax);
      // Answers a prefix of the keys that fits the byte bound; `served` says how many.
      const parts: string[] = [];
      let bytes = 0;
      let served = 0;
      for (const key of keys) {
        if (bytes >= replicationLimits.resyncBytesPerRequest) break;
        served += 1;
        const entry = service.get(key);
        if (!entry) continue;
        const json = entryJson(entry);
        parts.push(json);
        bytes += Buffer.byteLength(json) + 1;
      }
      return `{"rows":[${parts.join(',')}],"next":null,"served":${served}}`;
    },
  };
}

export function syncRoutes(service: SyncService, options: SyncRouteOptions): Route[] {
  const batchBody: BodyLimits = {
    bytesMax: replicateBodyBytesMax(options.valueBytesMax),
    budget: options.bodyBudget,
  };
  const smallBody: BodyLimits = {
    bytesMax: limits.syncBodyBytesMax,
    budget: options.bodyBudget,
  };
  const handlers = peerHandlers(service, options);
  const route = (method: string, pattern: string, handler: Handler): Route => ({
    method,
    pattern,
    permission: 'peer',
    handler,
  });
  return [
    route('POST', '/replicate', async (req, res) => {
      sendJsonText(res, 200, await handlers.replicate(() => readJson(req, batchBody)));
    }),
    route('GET', '/sync/digest', (req, res) => {
      sendJsonText(res, 200, handlers.digest(req.query.from));
    }),
    route('POST', '/sync/buckets', async (req, res) => {
      sendJsonText(res, 200, handlers.buckets(await readJson(req, smallBody)));
    }),
    route('POST', '/sync/rows', async (req, res) => {
      sendJsonText(res, 200, await handlers.rows(await readJson(req, smallBody)));
    }),
    route('POST', '/sync/fetch', async (req, res) => {
      sendJsonText(res, 200, handlers.fetch(await readJson(req, smallBody)));
    }),
    {
      method: 'GET',
      pattern: '/cluster',
      permission: 'admin',
      handler: (_req, res) => sendJson(res, 200, service.clusterStatus()),
    },
  ];
}

/** A refusal before the body is read: 503, and the connection closes (its body stays unread). */
function shed(message: string): PeerkvError {
  return new PeerkvError('OVERLOADED', message, {
    headers: { 'Retry-After': '1', Connection: 'close' },
  });
}
