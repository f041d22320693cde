// Two real stores for resync tests: the peer's real handlers (src/http/sync-routes.ts) over an
// in-memory transport that holds each request to its route's body limit (as readJson does).
import pino from 'pino';
import type { HybridClock } from '../../src/clock.ts';
import { PeerkvError } from '../../src/errors.ts';
import { bucketRowsFromPool, peerHandlers, type SyncService } from '../../src/http/sync-routes.ts';
import { createInlineStorePool } from '../../src/inline-pool.ts';
import { limits, replicateBodyBytesMax } from '../../src/limits.ts';
import type { StorePool } from '../../src/pool.ts';
import { PeerCallError, type PeerTransport } from '../../src/replication/peer-transport.ts';
import type { KvStore } from '../../src/store/kv-store.ts';
import type { ResyncDeps } from '../../src/sync/resync.ts';

export const VALUE_BYTES_MAX = 1024 * 1024;

export function syncService(store: KvStore): SyncService {
  const pool = createInlineStorePool();
  return {
    nodeId: store.nodeId,
    digest: store.digest,
    submit: async (mutations) => store.applyMutations(mutations),
    writeRoom: () => limits.writeQueueMutationsMax,
    get: (key) => store.get(key),
    bucketRows: bucketRowsFromPool(pool, store.dbPath),
    backlogFor: () => 0,
    resyncing: () => false,
    resyncMoved: () => 0,
    clusterStatus: () => ({}),
  };
}

/** The peer's handlers behind the body limits its HTTP routes enforce; each request's size and path are recorded. */
export function transportTo(
  store: KvStore,
  clock: HybridClock,
  bodies: number[],
  paths: string[] = [],
): PeerTransport {
  const handlers = peerHandlers(syncService(store), {
    valueBytesMax: VALUE_BYTES_MAX,
    timestampMax: () => clock.timestampMax(),
  });
  return {
    url: 'http://peer.invalid:1',
    ping: () => Promise.reject(new Error('not used')),
    close: async () => {},
    call: async (method, path, body) => {
      const bytes = body === undefined ? 0 : Buffer.byteLength(body);
      bodies.push(bytes);
      paths.push(path);
      const bytesMax =
        path === '/replicate' ? replicateBodyBytesMax(VALUE_BYTES_MAX) : limits.syncBodyBytesMax;
      if (bytes > bytesMax) {
        throw new PeerCallError(`${method} ${path} answered 413`, { status: 413 });
      }
      const parsed = body === undefined ? undefined : JSON.parse(body);
      let text: string;
      try {
        if (path === '/replicate') text = await handlers.replicate(async () => parsed);
        else if (path.startsWith('/sync/digest')) text = handlers.digest(null);
        else if (path === '/sync/buckets') text = handlers.buckets(parsed);
        else if (path === '/sync/rows') text = await handlers.rows(parsed);
        else if (path === '/sync/fetch') text = handlers.fetch(parsed);
        else throw new Error(`no route ${path}`);
      } catch (error) {
        if (error instanceof PeerkvError) {
          throw new PeerCallError(`${method} ${path} answered ${error.status}`, {
            status: error.status,
          });
        }
        throw error;
      }
      return { json: JSON.parse(text), headers: {}, bytes: Buffer.byteLength(text) };
    },
  };
}

/** What a resync of `store` needs, on `pool` (inline by default), with no waits. */
export function resyncDeps(
  store: KvStore,
  clock: HybridClock,
  pool: StorePool = createInlineStorePool(),
): ResyncDeps {
  return {
    store,
    pool,
    submit: async (mutations) => store.applyMutations(mutations),
    log: pino({ level: 'silent' }),
    valueBytesMax: VALUE_BYTES_MAX,
    localBacklog: () => 0,
    sleep: async () => {},
    deferMs: 0,
    timestampMax: () => clock.timestampMax(),
    yieldToBusyPeer: false,
    monoMs: () => performance.now(),
    deadlineBaseMs: 600_000,
  };
}
