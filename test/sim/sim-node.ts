// One simulated node: the real KvStore (SQLite in a temp dir), write queue, per-peer senders,
// supervisor, resync and expiry sweep, wired as src/node.ts wires them, but on virtual time
// (test/sim/virtual-time.ts), a seeded random source, its own drifting wall clock and the
// simulated network instead of undici. A crash drops the incarnation: its timers never fire,
// its queued writes are lost, its messages vanish; what SQLite committed stays on disk and the
// next start reopens it. Each node also keeps its peers in line with the cluster's membership
// (src/membership/cluster-members.ts) over the same network, so members can be removed and added.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { HybridClock } from '../../src/clock.ts';
import { PeerkvError } from '../../src/errors.ts';
import {
  bucketRowsFromPool,
  type PeerHandlers,
  peerHandlers,
  type SyncService,
} from '../../src/http/sync-routes.ts';
import { createInlineStorePool } from '../../src/inline-pool.ts';
import { limits, replicationLimits } from '../../src/limits.ts';
import { ClusterMembers } from '../../src/membership/cluster-members.ts';
import { memberVersion, parseMemberExchange } from '../../src/membership/membership.ts';
import type { StorePool } from '../../src/pool.ts';
import { PeerSender } from '../../src/replication/peer-sender.ts';
import type { Runtime } from '../../src/runtime.ts';
import { ExpirySweeper } from '../../src/store/expiry-sweeper.ts';
import { KvStore } from '../../src/store/kv-store.ts';
import { databasePath, openDatabase } from '../../src/store/open-database.ts';
import type { Change, MemberRow, Mutation, MutationResult } from '../../src/store/types.ts';
import { WriteQueue } from '../../src/store/write-queue.ts';
import { newPeer, type Peer, Supervisor } from '../../src/supervisor.ts';
import { Resync } from '../../src/sync/resync.ts';
import { TombstoneCollector } from '../../src/tombstones/collector.ts';
import { RemovedMembers } from '../../src/tombstones/removed-members.ts';
import { compareVersions, formatVersion, type Version } from '../../src/version.ts';
import type { Endpoint, Network } from './network.ts';
import { type Rng, stream } from './prng.ts';
import type { Owner, VirtualTime } from './virtual-time.ts';

export interface SimConfig {
  readonly seed: number;
  readonly nodes: number;
  readonly pingIntervalMs: number;
  readonly timeoutMs: number;
  readonly antiEntropyIntervalMs: number;
  readonly sweepIntervalMs: number;
  /** --tombstone-grace: tombstones and expired entries are removed once stable and this old. */
  readonly tombstoneGraceMs: number;
  /** --removed-member-hold: the sim adds every removed node back at the end, so it is longer than a schedule. */
  readonly removedMemberHoldMs: number;
  readonly valueBytesMax: number;
  /** The wall clock every node starts from (virtual ms 0), before its own offset. */
  readonly epochWallMs: number;
}

export interface SimContext {
  readonly config: SimConfig;
  readonly time: VirtualTime;
  readonly network: Network;
  /** A logger for one node incarnation (writes into the trace). */
  readonly logger: (node: number) => Logger;
  /** Told when a sender first learns its peer's id: the cursor it jumped to (see invariants). */
  readonly onFreshPeer: (from: number, to: number, cursor: number) => void;
  /** Where the empty database every node starts from is made (once). */
  readonly templateDir: string;
  /** Told of every entry this node refused from a peer (400/413): a sender skips those. */
  readonly onRefused: (node: number, key: string, version: string) => void;
}

export function simUrl(index: number): string {
  return `http://sim-n${index}:1`;
}

/** The node a simulated URL names (the network reaches no other). */
export function simIndex(url: string): number {
  const match = /^http:\/\/sim-n(\d+):1$/.exec(url);
  if (match === null) throw new PeerkvError('BAD_REQUEST', `${url} is not a simulated node`);
  return Number(match[1]);
}

/** A node's id from its index: fixed, so versions (and the trace) replay exactly. */
export function simNodeId(index: number): string {
  return `00000000000000${(index + 1).toString(16).padStart(2, '0')}`;
}

/** What one start of a node holds; dropped whole on a crash. */
export interface Incarnation {
  readonly owner: Owner;
  readonly runtime: Runtime;
  readonly clock: HybridClock;
  readonly store: KvStore;
  readonly writes: WriteQueue;
  readonly pool: StorePool;
  readonly peers: Peer[];
  readonly supervisor: Supervisor;
  readonly sweeper: ExpirySweeper;
  readonly tombstones: TombstoneCollector<Peer>;
  readonly handlers: PeerHandlers;
  readonly members: ClusterMembers;
  readonly removed: RemovedMembers;
}

export class SimNode {
  readonly index: number;
  readonly nodeId: string;
  readonly dataDir: string;
  readonly #ctx: SimContext;
  /** The node's wall clock: an offset (jumps) and a drift rate, kept across crashes. */
  clockOffsetMs = 0;
  driftPpm = 0;
  #driftBaseMs = 0;
  #run: Incarnation | null = null;
  /** Starts so far (the first start is 1). */
  runs = 0;
  /** Rows removed past the horizon, over every start. */
  tombstonesRemoved = 0;
  /** This incarnation's rows as last read for the invariants, and a connection that sees changes. */
  #rows: StoreRows | null = null;
  /**
   * Every version this node's store ever held, over all its incarnations (from the rows the
   * step invariants read): a retired node's writes no other node ever held may be lost.
   */
  readonly seenVersions = new Set<string>();
  /**
   * Keys whose row this node removed past its tombstone horizon, with the version removed (the
   * highest, over all its incarnations): seen as rows that were there at one read and gone at
   * the next read after a removal.
   */
  readonly removedRows = new Map<string, Version>();

  constructor(ctx: SimContext, index: number, dataDir: string) {
    this.#ctx = ctx;
    this.index = index;
    this.nodeId = simNodeId(index);
    this.dataDir = dataDir;
  }

  /** This start's process nonce (X-Peerkv-Instance): node index and start count. */
  get instanceId(): string {
    return `${(this.index + 1).toString(16).padStart(8, '0')}${this.runs.toString(16).padStart(8, '0')}`;
  }

  get running(): Incarnation | null {
    return this.#run;
  }

  wallMs(): number {
    const nowMs = this.#ctx.time.nowMs;
    const drift = ((nowMs - this.#driftBaseMs) * this.driftPpm) / 1e6;
    return this.#ctx.config.epochWallMs + nowMs + this.clockOffsetMs + drift;
  }

  /** Changes the drift rate from now on (what drifted so far is folded into the offset). */
  setDrift(ppm: number): void {
    const nowMs = this.#ctx.time.nowMs;
    this.clockOffsetMs += ((nowMs - this.#driftBaseMs) * this.driftPpm) / 1e6;
    this.#driftBaseMs = nowMs;
    this.driftPpm = ppm;
  }

  start(): void {
    if (this.#run) return;
    if (this.runs === 0) this.#createDatabase();
    this.runs += 1;
    this.#run = this.#incarnation(
      stream(this.#ctx.config.seed, `node${this.index}-run${this.runs}`),
    );
    this.#ctx.network.attach(this.index, this.#endpoint(this.#run));
    this.#run.supervisor.start();
    this.#run.members.start();
    this.#run.sweeper.start();
    this.#run.tombstones.start();
  }

  /**
   * A fresh file with this node's fixed id (a real node draws a random one), copied from one
   * made once per process for each node index: creating the schema and 4,096 buckets costs more
   * than a whole schedule's writes.
   */
  #createDatabase(): void {
    const template = nodeDatabase(this.#ctx.templateDir, this.index, this.nodeId);
    mkdirSync(this.dataDir, { recursive: true });
    copyFileSync(template, databasePath(this.dataDir));
  }

  /** Kill -9: nothing more runs; only what SQLite committed survives. */
  crash(): void {
    const run = this.#run;
    if (!run) return;
    run.owner.alive = false;
    this.#run = null;
    this.#ctx.network.attach(this.index, null);
    // Closed first, so the store's connection is the last to close, as it was before it existed.
    this.#rows?.watcher.close();
    this.#rows = null;
    run.store.close();
  }

  /**
   * Every row the running store holds (`changesSince(0)`, each with its seq), and the same rows
   * by key, for the step invariants (undefined while down). They are read again only when the
   * file changed since the last read: `PRAGMA data_version` on a read-only connection of this
   * incarnation's own moves whenever another connection (the store's) commits anything, and
   * nothing is left uncommitted between two events (every store transaction is synchronous).
   */
  storeRows(
    readMax: number,
  ): { changes: readonly Change[]; byKey: ReadonlyMap<string, Change> } | undefined {
    const run = this.#run;
    if (!run) return undefined;
    if (this.#rows === null) {
      const watcher = new Database(run.store.dbPath, { readonly: true, fileMustExist: true });
      this.#rows = {
        watcher,
        version: watcher.prepare('PRAGMA data_version').pluck(),
        seen: -1,
        changes: [],
        byKey: new Map(),
        maxSeq: -1,
        removed: 0,
      };
    }
    const rows = this.#rows;
    const version = rows.version.get() as number;
    if (version === rows.seen) return rows;
    rows.seen = version;
    const store = run.store;
    // Every change takes a seq above all before it, so the rows changed since the last read are
    // those past its highest seq; only removal past the horizon drops rows without one, and
    // then everything is read again.
    if (rows.maxSeq < 0 || store.rowsRemoved !== rows.removed) {
      const before = rows.byKey;
      rows.changes = store.changesSince(0, readMax);
      rows.byKey = new Map(rows.changes.map((change) => [change.key, change]));
      for (const [key, change] of before) {
        if (rows.byKey.has(key)) continue;
        const known = this.removedRows.get(key);
        if (!known || compareVersions(change.version, known) > 0) {
          this.removedRows.set(key, change.version);
        }
      }
      for (const change of rows.changes) this.seenVersions.add(formatVersion(change.version));
    } else {
      const changed = store.changesSince(rows.maxSeq, readMax);
      for (const change of changed) this.seenVersions.add(formatVersion(change.version));
      if (changed.length > 0) {
        const byKey = new Map(rows.byKey);
        for (const change of changed) byKey.set(change.key, change);
        rows.byKey = byKey;
        rows.changes = [...byKey.values()].sort((a, b) => a.seq - b.seq);
      }
    }
    rows.maxSeq = rows.changes.length === 0 ? 0 : rows.changes[rows.changes.length - 1]!.seq;
    rows.removed = store.rowsRemoved;
    return rows;
  }

  /** A client write, as the HTTP routes make it (a delete leaves a tombstone: the node has peers). */
  async write(mutation: Mutation & { kind: 'local' }): Promise<MutationResult> {
    const run = this.#run;
    if (!run) throw new PeerkvError('SHUTTING_DOWN', 'node is down');
    // As src/node.ts: a lone node need not remember deleting a key it never held.
    const tombstoneIfAbsent = run.peers.length > 0 || run.members.clustered;
    const [result] = await run.writes.submit([{ ...mutation, tombstoneIfAbsent }]);
    return result!;
  }

  #incarnation(rng: Rng): Incarnation {
    const { config, time } = this.#ctx;
    const owner: Owner = { alive: true };
    const runtime = time.runtimeFor(owner);
    const log = this.#ctx.logger(this.index);
    const wallMs = () => this.wallMs();
    const peers: Peer[] = [];
    const clock = new HybridClock(
      wallMs,
      0,
      () => versionAheadMsMax(peers),
      () => peers.reduce((high, peer) => Math.max(high, peer.clockHigh), 0),
    );
    const store = new KvStore(this.dataDir, 'normal', clock, log.child({ component: 'store' }));
    const writes = new WriteQueue(store, {
      commitMutationsMax: limits.commitMutationsMax,
      queuedMutationsMax: limits.writeQueueMutationsMax,
      runtime,
      onCommit: () => {
        for (const peer of peers) peer.sender.notify();
      },
    });
    const pool = createInlineStorePool();
    const parts = { owner, runtime, clock, store, writes, pool, peers, log, rng };
    const members = this.#members(parts);
    peers.push(...members.initialPeerUrls().map((url) => this.#peer(parts, simIndex(url))));
    const supervisor = new Supervisor({
      selfNodeId: store.nodeId,
      selfInstanceId: this.instanceId,
      peers,
      pingIntervalMs: config.pingIntervalMs,
      antiEntropyIntervalMs: config.antiEntropyIntervalMs,
      clockSkewMsMax: 1_000,
      clockAheadMs: () => clock.aheadOfWallMs(),
      valueBytesMax: config.valueBytesMax,
      wallMs,
      log: log.child({ component: 'supervisor' }),
      runResync: (peer, yieldToBusyPeer) => this.#resync(parts, peer, yieldToBusyPeer),
      random: rng,
      runtime,
      startupWindowMs: 3 * config.pingIntervalMs,
      busyPeerStallMs: config.timeoutMs,
      admit: (peer, nodeId) => members.admit(peer, nodeId),
    });
    const sweeper = new ExpirySweeper({
      expiredKeys: (nowWallMs, limit) => store.expiredKeys(nowWallMs, limit),
      submit: (mutations) => writes.submit(mutations),
      wallMs,
      intervalMs: config.sweepIntervalMs,
      catchUpMs: limits.sweepCatchUpMs,
      entriesMax: limits.sweepEntriesMax,
      log: log.child({ component: 'expiry' }),
      runtime,
    });
    const membership = members.membership;
    const removed = new RemovedMembers({
      rows: () => membership.rows(),
      revision: () => membership.revision,
      selfNodeId: store.nodeId,
      store,
    });
    store.admits = (origin, source) => removed.admits(origin, source);
    members.isClosed = (nodeId) => removed.isClosed(nodeId);
    const tombstones = new TombstoneCollector({
      store,
      peers: () => peers,
      graceMs: config.tombstoneGraceMs,
      intervalMs: config.pingIntervalMs,
      wallMs,
      log: log.child({ component: 'tombstones' }),
      runtime,
      removed,
      removedMemberHoldMs: config.removedMemberHoldMs,
      wantResync: (peer) => supervisor.wantResync(peer, 'removed-member'),
      onRemoved: (count) => {
        this.tombstonesRemoved += count;
      },
    });
    const handlers = peerHandlers(
      this.#syncService(
        store,
        writes,
        pool,
        peers,
        () => supervisor,
        (id) => members.membership.isRemoved(id),
      ),
      {
        valueBytesMax: config.valueBytesMax,
        timestampMax: () => clock.timestampMax(),
      },
    );
    return {
      owner,
      runtime,
      clock,
      store,
      writes,
      pool,
      peers,
      supervisor,
      sweeper,
      tombstones,
      handlers,
      members,
      removed,
    };
  }

  /** As src/node.ts wires it: every other node is in `--peers`; no --join. */
  #members(parts: Parts): ClusterMembers {
    const { config, network } = this.#ctx;
    const others = Array.from({ length: config.nodes }, (_, i) => i).filter(
      (i) => i !== this.index,
    );
    return new ClusterMembers({
      store: parts.store,
      selfNodeId: this.nodeId,
      selfUrl: simUrl(this.index),
      configuredPeers: others.map(simUrl),
      join: null,
      peers: parts.peers,
      createPeer: (url) => this.#peer(parts, simIndex(url)),
      clientFor: (url) => network.transport(this.index, simIndex(url), url, parts.owner),
      onPeerUrl: () => {},
      newVersion: (above) => memberVersion(parts.clock, parts.store.nodeId, above),
      wallMs: () => this.wallMs(),
      gossipIntervalMs: Math.max(250, Math.min(config.pingIntervalMs, 5_000)),
      fullIntervalMs: config.antiEntropyIntervalMs,
      log: parts.log.child({ component: 'membership' }),
      runtime: parts.runtime,
    });
  }

  /** Whether this node's member list says `nodeId` is removed (false while it is down). */
  isRemoved(nodeId: string): boolean {
    return this.#run?.members.membership.isRemoved(nodeId) ?? false;
  }

  /** The member rows this node holds (empty while it is down). */
  memberRows(): MemberRow[] {
    return this.#run?.members.membership.rows() ?? [];
  }

  #peer(parts: Parts, other: number): Peer {
    const url = simUrl(other);
    const client = this.#ctx.network.transport(this.index, other, url, parts.owner);
    let peer: Peer | undefined;
    const sender = new PeerSender({
      store: parts.store,
      pool: parts.pool,
      client,
      log: parts.log.child({ component: 'replication', peer: `n${other}` }),
      wallMs: () => this.wallMs(),
      random: parts.rng,
      runtime: parts.runtime,
      onRefused: () => {
        if (peer) this.#run?.supervisor.noteRefused(peer);
      },
    });
    const activate = sender.activate.bind(sender);
    sender.activate = (nodeId: string) => {
      const fresh = activate(nodeId);
      if (fresh) this.#ctx.onFreshPeer(this.index, other, sender.cursor);
      return fresh;
    };
    peer = newPeer(url, client, sender);
    return peer;
  }

  #resync(parts: Parts, peer: Peer, yieldToBusyPeer: boolean) {
    const { config } = this.#ctx;
    return new Resync(
      {
        store: parts.store,
        pool: parts.pool,
        submit: (mutations) => parts.writes.submit(mutations),
        log: parts.log.child({ component: 'resync', peer: peer.url }),
        valueBytesMax: config.valueBytesMax,
        localBacklog: () => peer.sender.pending,
        sleep: (ms) => parts.runtime.sleep(ms),
        deferMs: Math.min(config.pingIntervalMs, 1_000),
        timestampMax: () => parts.clock.timestampMax(),
        yieldToBusyPeer,
        monoMs: () => parts.runtime.monoMs(),
        deadlineBaseMs: Math.max(
          replicationLimits.resyncDeadlineMinMs,
          replicationLimits.resyncDeadlineTimeouts * config.timeoutMs,
        ),
        onMoved: (entries) => this.#run?.supervisor.noteResyncMoved(entries),
      },
      peer.client,
      peer.nodeId!,
    ).run();
  }

  #syncService(
    store: KvStore,
    writes: WriteQueue,
    pool: StorePool,
    peers: readonly Peer[],
    supervisor: () => Supervisor,
    isRemoved: (nodeId: string) => boolean,
  ): SyncService {
    return {
      nodeId: store.nodeId,
      digest: store.digest,
      submit: (mutations, options) => writes.submit(mutations, options),
      writeRoom: () => writes.room,
      get: (key) => store.get(key),
      bucketRows: bucketRowsFromPool(pool, store.dbPath),
      backlogFor: (nodeId) =>
        peers.find((peer) => (peer.nodeId ?? peer.sender.peerNodeId) === nodeId)?.sender.pending ??
        0,
      resyncing: () => supervisor().resyncing,
      resyncMoved: () => supervisor().resyncMoved,
      clusterStatus: () => ({}),
      refusesSender: isRemoved,
    };
  }

  #endpoint(run: Incarnation): Endpoint {
    const instanceId = this.instanceId;
    return {
      owner: run.owner,
      ping: () => ({
        nodeId: this.nodeId,
        timeWallMs: Math.floor(this.wallMs()),
        valueBytesMax: this.#ctx.config.valueBytesMax,
        instanceId,
        clockHigh: run.clock.last > 0 ? run.clock.last : null,
        ackReport: run.tombstones.report(),
      }),
      handle: async (method, path, body) => {
        const parsed = body === undefined ? undefined : JSON.parse(body);
        const [route, query] = path.split('?');
        if (method === 'POST' && route === '/replicate') {
          return run.handlers
            .replicate(() => Promise.resolve(parsed))
            .catch((error: unknown) => {
              if (error instanceof PeerkvError && (error.status === 400 || error.status === 413)) {
                for (const entry of (parsed as { entries: { key: string; version: string }[] })
                  .entries) {
                  this.#ctx.onRefused(this.index, entry.key, entry.version);
                }
              }
              throw error;
            });
        }
        if (method === 'GET' && route === '/sync/digest') {
          return run.handlers.digest(new URLSearchParams(query).get('from') ?? undefined);
        }
        if (method === 'POST' && route === '/sync/buckets') return run.handlers.buckets(parsed);
        if (method === 'POST' && route === '/sync/rows') return run.handlers.rows(parsed);
        if (method === 'POST' && route === '/sync/fetch') return run.handlers.fetch(parsed);
        if (method === 'POST' && route === '/sync/members') {
          const answer = run.members.service().merge(parseMemberExchange(parsed));
          return JSON.stringify(answer);
        }
        throw new PeerkvError('NOT_FOUND', `no route ${method} ${path}`);
      },
    };
  }
}

interface StoreRows {
  readonly watcher: Database.Database;
  readonly version: Database.Statement;
  seen: number;
  changes: readonly Change[];
  byKey: ReadonlyMap<string, Change>;
  /** The highest seq read (-1: nothing read yet), and the store's rows removed then. */
  maxSeq: number;
  removed: number;
}

interface Parts {
  readonly owner: Owner;
  readonly runtime: Runtime;
  readonly clock: HybridClock;
  readonly store: KvStore;
  readonly writes: WriteQueue;
  readonly pool: StorePool;
  readonly peers: Peer[];
  readonly log: Logger;
  readonly rng: Rng;
}

function emptyDatabase(templateDir: string): string {
  const path = databasePath(templateDir);
  if (!existsSync(path)) openDatabase(templateDir, 'normal').close();
  return path;
}

/** The empty database with node `index`'s id in it (closed: no WAL beside it). */
function nodeDatabase(templateDir: string, index: number, nodeId: string): string {
  const dir = join(templateDir, `n${index}`);
  const path = databasePath(dir);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  copyFileSync(emptyDatabase(templateDir), path);
  const db = new Database(path);
  try {
    db.prepare("UPDATE meta SET value = ? WHERE name = 'node_id'").run(nodeId);
  } finally {
    db.close();
  }
  return path;
}

/** As src/node.ts: the largest offset measured to a peer, plus the slack. */
function versionAheadMsMax(peers: readonly Peer[]): number {
  let offsetMs = 0;
  for (const peer of peers) offsetMs = Math.max(offsetMs, peer.clockOffsetMs ?? 0);
  return offsetMs + replicationLimits.versionAheadSlackMs;
}
