/**
 * `GET /cluster/nodes`: the whole cluster seen from one node. The node asks
 * every peer it sees up for its own `/cluster` (one fan-out at a time, the
 * answer kept for a moment so several dashboards cost one fan-out), and
 * joins those views: each node's keys and hash from itself, the changes
 * still pending towards it and the worst lag from everyone else.
 */
import type {
  ClusterOverview,
  ClusterStatus,
  OverviewNode,
  PeerStatus,
  ResyncRecord,
} from './client/types.ts';

/** What a node's own `/cluster` fetch of a peer gave: its status, or why not. */
export type PeerView = { readonly status: ClusterStatus } | { readonly error: string };

export interface OverviewDeps {
  readonly selfStatus: () => ClusterStatus;
  /** GET /cluster of the peer at `url`, bounded in time by the caller. */
  readonly fetchStatus: (url: string) => Promise<unknown>;
  readonly fetchTimeoutMs: number;
  /** How long one overview is served again before a new fan-out. */
  readonly cacheMs: number;
  readonly monoMs: () => number;
  readonly wallMs: () => number;
}

export class ClusterOverviewSource {
  readonly #deps: OverviewDeps;
  #cached: { atMonoMs: number; overview: ClusterOverview } | null = null;
  #inFlight: Promise<ClusterOverview> | null = null;

  constructor(deps: OverviewDeps) {
    this.#deps = deps;
  }

  overview(): Promise<ClusterOverview> {
    const cached = this.#cached;
    if (cached && this.#deps.monoMs() - cached.atMonoMs < this.#deps.cacheMs) {
      return Promise.resolve(cached.overview);
    }
    this.#inFlight ??= this.#build().finally(() => {
      this.#inFlight = null;
    });
    return this.#inFlight;
  }

  async #build(): Promise<ClusterOverview> {
    const self = this.#deps.selfStatus();
    const views = new Map<string, PeerView>();
    await Promise.all(
      self.peers
        .filter((peer) => peer.state === 'up')
        .map(async (peer) => views.set(peer.url, await this.#fetch(peer.url))),
    );
    const overview = buildOverview(self, views, new Date(this.#deps.wallMs()).toISOString());
    this.#cached = { atMonoMs: this.#deps.monoMs(), overview };
    return overview;
  }

  async #fetch(url: string): Promise<PeerView> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${this.#deps.fetchTimeoutMs} ms`)),
        this.#deps.fetchTimeoutMs,
      );
    });
    try {
      const json = await Promise.race([this.#deps.fetchStatus(url), expired]);
      if (!isClusterStatus(json)) return { error: 'answer is not a /cluster status' };
      return { status: json };
    } catch (error) {
      return { error: error instanceof Error ? error.message : String(error) };
    } finally {
      clearTimeout(timer);
    }
  }
}

function isClusterStatus(json: unknown): json is ClusterStatus {
  const status = json as Partial<ClusterStatus> | null;
  return (
    typeof status === 'object' &&
    status !== null &&
    typeof status.node?.nodeId === 'string' &&
    typeof status.node.hash === 'string' &&
    Array.isArray(status.peers)
  );
}

/** Joins this node's status and its peers' own statuses into one row per node. */
export function buildOverview(
  self: ClusterStatus,
  views: ReadonlyMap<string, PeerView>,
  asOf: string,
): ClusterOverview {
  const statuses = [self];
  for (const view of views.values()) if ('status' in view) statuses.push(view.status);
  const towards = (nodeId: string | null, url: string) =>
    statuses
      .filter((status) => status.node.nodeId !== nodeId)
      .flatMap((status) => status.peers)
      .filter((peer) => (nodeId !== null && peer.nodeId === nodeId) || peer.url === url);
  const nodes: OverviewNode[] = [
    row(self, { url: self.node.url, state: 'up', self: true }, towards(self.node.nodeId, '')),
    ...self.peers.map((peer) => {
      const view = views.get(peer.url);
      const status = view && 'status' in view ? view.status : null;
      const error = view && 'error' in view ? view.error : null;
      const nodeId = status?.node.nodeId ?? peer.nodeId;
      const state = peer.state === 'up' || peer.state === 'down' ? peer.state : 'unknown';
      const fields = { url: peer.url, state, self: false, error, own: peer } as const;
      return row(status, fields, towards(nodeId, peer.url));
    }),
  ];
  const hashes = new Set(nodes.flatMap((node) => (node.hash === null ? [] : [node.hash])));
  const hashesAgree = hashes.size <= 1;
  const healthy = hashesAgree && nodes.every((node) => node.state === 'up' && node.hash !== null);
  return { asOf, nodes, healthy, hashesAgree };
}

function row(
  status: ClusterStatus | null,
  fields: {
    url: string;
    state: OverviewNode['state'];
    self: boolean;
    error?: string | null;
    own?: PeerStatus;
  },
  incoming: readonly PeerStatus[],
): OverviewNode {
  const lags = incoming.flatMap((peer) =>
    peer.replication.lagMsP99 === null ? [] : [peer.replication.lagMsP99],
  );
  const resyncs = (status?.peers ?? (fields.own ? [fields.own] : [])).flatMap((peer) =>
    peer.lastResync ? [peer.lastResync] : [],
  );
  return {
    url: fields.url,
    nodeId: status?.node.nodeId ?? fields.own?.nodeId ?? null,
    state: fields.state,
    self: fields.self,
    entries: status?.node.entries ?? null,
    hash: status?.node.hash ?? null,
    seq: status?.node.seq ?? null,
    uptimeMs: status?.node.uptimeMs ?? null,
    pendingChanges:
      incoming.length === 0
        ? null
        : incoming.reduce((sum, peer) => sum + peer.replication.pendingChanges, 0),
    lagMsP99: lags.length === 0 ? null : Math.max(...lags),
    lastResync: latest(resyncs),
    resyncing: (status?.peers ?? []).some((peer) => peer.resyncing),
    error: fields.error ?? null,
  };
}

function latest(records: readonly ResyncRecord[]): ResyncRecord | null {
  let best: ResyncRecord | null = null;
  for (const record of records) if (best === null || record.at > best.at) best = record;
  return best;
}
