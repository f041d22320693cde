// Shared set-up for the unit tests that need a real KvStore: temp data dirs under one root, removed in after().
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { HybridClock, type WallClock } from '../../src/clock.ts';
import type { StorePool } from '../../src/pool.ts';
import type { PeerClient } from '../../src/replication/peer-client.ts';
import { PeerSender } from '../../src/replication/peer-sender.ts';
import { KvStore } from '../../src/store/kv-store.ts';
import type { Entry, MutationResult } from '../../src/store/types.ts';
import { formatVersion } from '../../src/version.ts';

/** A root temp dir for one test file; `newDir()` hands out fresh data dirs under it. */
export class TempDirs {
  readonly root = mkdtempSync(join(tmpdir(), 'peerkv-unit-'));
  #next = 0;

  newDir(): string {
    this.#next += 1;
    return join(this.root, `node-${this.#next}`);
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

export function openStore(dataDir: string, wallMs: WallClock = Date.now): KvStore {
  return new KvStore(dataDir, 'normal', new HybridClock(wallMs));
}

export function putLocal(store: KvStore, key: string, valueJson: string | null): MutationResult {
  const [result] = store.applyMutations([{ kind: 'local', key, valueJson }]);
  if (!result) throw new Error('applyMutations returned no result');
  return result;
}

export function applyRemote(
  store: KvStore,
  entries: readonly Entry[],
  sourceNodeId = 'ffffffffffffffff',
): MutationResult[] {
  return store.applyMutations(entries.map((entry) => ({ kind: 'remote', entry, sourceNodeId })));
}

/** Every row the store holds (live and tombstones), as replicated content, in key order. */
export function dumpContent(store: KvStore): string[] {
  const rows = store.changesSince(0, 1_000_000);
  return rows
    .map((row) => `${JSON.stringify(row.key)} ${formatVersion(row.version)} ${row.valueJson}`)
    .sort();
}

/** What a fake peer answers a sender's call with (or throws). */
export type FakeCall = (method: string, path: string, body?: string) => Promise<unknown>;

/**
 * A sender over `store` toward a fake peer at http://127.0.0.1:1 that answers with `call`;
 * without a `pool`, a backlog long enough for a worker's read fails.
 */
export function senderToFake(
  store: KvStore,
  call: FakeCall,
  pool: StorePool = {} as StorePool,
): PeerSender {
  const client = { url: 'http://127.0.0.1:1', call } as unknown as PeerClient;
  return new PeerSender({
    store,
    pool,
    client,
    log: pino({ level: 'silent' }),
    wallMs: Date.now,
    random: () => 0.5,
  });
}
