/**
 * The shapes the client sends and receives: entries, pages, and the JSON of
 * `GET /cluster` and `GET /cluster/nodes`. Shared with the node, which
 * builds the overview, so both sides agree on one definition.
 */

export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

/** A live entry: its value and the version that wrote it (`<hlc>-<node id>`). */
export interface Entry<T extends JsonValue = JsonValue> {
  readonly key: string;
  readonly value: T;
  readonly version: string;
}

export interface PutResult {
  readonly key: string;
  readonly version: string;
}

export interface DeleteResult {
  readonly key: string;
  /** The version of the tombstone. */
  readonly version: string;
  /** Whether a live value was there before. */
  readonly existed: boolean;
}

/** One op of `batch()`: a put or a delete, applied with the others all or none. */
export type BatchOp =
  | {
      readonly op: 'put';
      readonly key: string;
      readonly value: JsonValue;
      /** Only if the key's current version is this one (else the whole batch fails, 412). */
      readonly ifMatch?: string;
      /** `*`: only if the key does not exist. */
      readonly ifNoneMatch?: '*';
      /** Seconds until the entry expires. */
      readonly ttl?: number;
    }
  | { readonly op: 'delete'; readonly key: string; readonly ifMatch?: string };

export interface BatchResult {
  readonly ops: readonly {
    readonly op: 'put' | 'delete';
    readonly key: string;
    readonly version: string;
  }[];
}

export interface ListOptions {
  /** Only keys that start with this. */
  readonly prefix?: string;
  /** Start after this key (the `next` of the previous page). */
  readonly after?: string;
  /** Entries per page, 1 to 1000 (the node's default is 100). */
  readonly limit?: number;
}

export interface ListPage {
  readonly items: Entry[];
  /** Pass as `after` for the next page; null on the last page. */
  readonly next: string | null;
}

export interface ResyncRecord {
  readonly at: string;
  readonly trigger: string;
  readonly durationMs: number;
  readonly result?: 'equal' | 'synced' | 'deferred';
  readonly bucketsDiffering?: number;
  readonly entriesSent?: number;
  readonly entriesReceived?: number;
  readonly bytesSent?: number;
  readonly bytesReceived?: number;
  readonly error?: string;
}

export interface PeerReplication {
  readonly pendingChanges: number;
  readonly oldestPendingAgeMs: number | null;
  readonly lagMsP50: number | null;
  readonly lagMsP99: number | null;
  readonly cursor: number;
  readonly batchesSent: number;
  readonly entriesSent: number;
  readonly bytesSent: number;
  readonly failures: number;
  readonly lastError: string | null;
  /** Further fields a node may report (refused entries, ...). */
  readonly [extra: string]: unknown;
}

export interface PeerStatus {
  readonly url: string;
  readonly nodeId: string | null;
  readonly state: 'unknown' | 'up' | 'down';
  readonly lastSeen: string | null;
  readonly lastSeenAgoMs: number | null;
  readonly rttMs: number | null;
  readonly clockOffsetMs: number | null;
  readonly clockSkewed: boolean;
  readonly replication: PeerReplication;
  readonly resyncing: boolean;
  readonly lastResync: ResyncRecord | null;
  readonly resyncTotals: {
    readonly runs: number;
    readonly entriesSent: number;
    readonly entriesReceived: number;
    readonly bytesSent: number;
    readonly bytesReceived: number;
  };
  /** Further fields a node may report (node id conflicts, ...). */
  readonly [extra: string]: unknown;
}

export interface SelfStatus {
  readonly nodeId: string;
  readonly url: string;
  readonly uptimeMs: number;
  readonly seq: number;
  readonly entries: number;
  readonly hash: string;
  readonly writeQueue: number;
  readonly commits: number;
  /** Further fields a node may report (storage, clock, watchers, ...). */
  readonly [extra: string]: unknown;
}

/** `GET /cluster`: one node's view of itself and of its peers. */
export interface ClusterStatus {
  readonly node: SelfStatus;
  readonly peers: PeerStatus[];
}

/** One node of the cluster in `GET /cluster/nodes`. */
export interface OverviewNode {
  readonly url: string;
  readonly nodeId: string | null;
  /** `up`: it answered; `down`: the asked node cannot reach it; `unknown`: not pinged yet. */
  readonly state: 'up' | 'down' | 'unknown';
  /** The node that built this overview. */
  readonly self: boolean;
  readonly entries: number | null;
  readonly hash: string | null;
  readonly seq: number | null;
  readonly uptimeMs: number | null;
  /** Changes the other nodes have not yet delivered to this one (as far as they answered). */
  readonly pendingChanges: number | null;
  /** The worst p99 replication lag towards this node, in ms. */
  readonly lagMsP99: number | null;
  /** This node's most recent resync with any peer. */
  readonly lastResync: ResyncRecord | null;
  readonly resyncing: boolean;
  /** Why its status could not be read, when it could not. */
  readonly error: string | null;
}

/** `GET /cluster/nodes`: every node, seen from the one asked. */
export interface ClusterOverview {
  readonly asOf: string;
  readonly nodes: OverviewNode[];
  /** Every node up and every hash equal. */
  readonly healthy: boolean;
  /** Every node that answered has the same hash. */
  readonly hashesAgree: boolean;
}

/** One member of the cluster as a node sees it (`GET /cluster/members`). */
export interface Member {
  readonly nodeId: string;
  readonly url: string;
  readonly state: 'member' | 'removed';
  /** The version of the runtime change that set `state` (null: never changed at runtime). */
  readonly version: string | null;
  /** This row is the answering node itself. */
  readonly self: boolean;
}

export interface MemberList {
  readonly self: { readonly nodeId: string; readonly url: string };
  /** Members (and removed members), by URL. */
  readonly members: readonly Member[];
}

/** The answer of `POST /cluster/members` (`url`, `nodeId`, `added`) or `DELETE` (`removed`, `nodeId`). */
export interface MemberChange extends MemberList {
  readonly url?: string;
  readonly nodeId?: string;
  readonly added?: boolean;
  readonly removed?: string;
}
