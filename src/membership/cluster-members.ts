/**
 * Keeps a node's peers in line with the cluster's membership. The peers are
 * this node's own addresses (`--peers`, and those learnt when it joined) plus
 * the advertised URL of every member it has no address for, minus every node
 * whose row says `removed` (matched by node id, which a ping tells), minus
 * everyone once this node itself was removed. Every change to the list, from
 * an operator or a peer, reconciles the peers: new ones are created (the
 * supervisor pings them and brings them level with a resync), removed ones
 * stop at once, lose their cursor, and are told one last time.
 */
import type { Logger } from 'pino';
import { PeerkvError } from '../errors.ts';
import type { MemberService, MemberView } from '../http/member-routes.ts';
import { limits } from '../limits.ts';
import type { PeerTransport } from '../replication/peer-transport.ts';
import { nodeRuntime, type Runtime, type TimerHandle } from '../runtime.ts';
import type { MemberRow } from '../store/types.ts';
import type { Peer } from '../supervisor.ts';
import { NODE_ID_PATTERN } from '../version.ts';
import { MembershipGossip } from './gossip.ts';
import { type MemberExchange, Membership, normaliseUrl } from './membership.ts';

export interface ClusterMembersDeps {
  readonly store: {
    members(): MemberRow[];
    saveMembers(rows: readonly MemberRow[]): void;
    peerAddresses(): string[];
    addPeerAddresses(urls: readonly string[]): void;
    dropPeerCursor(url: string): void;
    /** Addresses found to reach a removed node, kept over a restart (an old --peers may name it). */
    removedAddresses(): Map<string, string>;
    setRemovedAddress(url: string, nodeId: string | null): void;
  };
  readonly selfNodeId: string;
  readonly selfUrl: string;
  /** `--peers`. */
  readonly configuredPeers: readonly string[];
  /** `--join`, or null. */
  readonly join: string | null;
  /** The node's peer list, changed in place (the supervisor and senders read it). */
  readonly peers: Peer[];
  readonly createPeer: (url: string) => Peer;
  /** A client for a URL that is not a peer (a join, an operator's add). */
  readonly clientFor: (url: string) => PeerTransport;
  /** Called with the URL of every peer added (the connection guard keeps slots for peers). */
  readonly onPeerUrl: (url: string) => void;
  /** See `MembershipDeps.newVersion` (`memberVersion` over the node's clock). */
  readonly newVersion: (above: string | undefined) => string;
  readonly wallMs: () => number;
  readonly gossipIntervalMs: number;
  readonly fullIntervalMs: number;
  readonly log: Logger;
  /** Timers and the monotonic clock (the simulator passes virtual ones); Node's own when absent. */
  readonly runtime?: Runtime;
}

export class ClusterMembers {
  readonly membership: Membership;
  /** Whether a removed member's writes were closed (src/tombstones/removed-members.ts): it cannot be added back. */
  isClosed: (nodeId: string) => boolean = () => false;
  readonly gossip: MembershipGossip;
  readonly #deps: ClusterMembersDeps;
  readonly #runtime: Runtime;
  /** This node's own addresses for its peers. */
  readonly #addresses: Set<string>;
  /** Addresses that turned out to reach a removed node (skipped while it stays removed). */
  readonly #removedAt: Map<string, string>;
  /** Removed peers' clients, kept until they were told. */
  readonly #leaving = new Map<string, PeerTransport>();
  #joining: string | null = null;
  #wasRemoved = false;
  #stopped = false;

  constructor(deps: ClusterMembersDeps) {
    this.#deps = deps;
    this.#runtime = deps.runtime ?? nodeRuntime;
    this.membership = new Membership({
      store: deps.store,
      selfNodeId: deps.selfNodeId,
      newVersion: deps.newVersion,
    });
    this.#addresses = new Set([...deps.configuredPeers, ...deps.store.peerAddresses()]);
    this.#removedAt = deps.store.removedAddresses();
    this.gossip = new MembershipGossip({
      membership: this.membership,
      peers: () => deps.peers,
      contacts: () => this.#contacts(),
      exchange: (url, body) => this.#exchange(url, body),
      addresses: () => this.#addressList(),
      merged: (answer, joining) => this.#merged(answer, joining),
      intervalMs: deps.gossipIntervalMs,
      fullIntervalMs: deps.fullIntervalMs,
      monoMs: () => this.#runtime.monoMs(),
      log: deps.log,
      runtime: this.#runtime,
    });
  }

  /** The peer URLs to start with. */
  initialPeerUrls(): string[] {
    return [...this.#desired().keys()];
  }

  /** Starts the gossip and, with --join, the join. */
  start(): void {
    if (this.#deps.join !== null) {
      this.membership.add(this.#deps.selfNodeId, this.#deps.selfUrl);
      this.#startJoin(this.#deps.join);
    }
    this.gossip.start();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.gossip.stop();
  }

  /**
   * Whether this node is, or ever was, part of a cluster: a node with no peers
   * right now (every other member removed it, or it was removed) still must
   * remember deleting a key it never held, since the key may live elsewhere.
   */
  get clustered(): boolean {
    return (
      this.#addresses.size > 0 || this.membership.rows().length > 0 || this.#deps.join !== null
    );
  }

  /** Why the node is not ready (a join not answered yet), or null. */
  get notReadyReason(): string | null {
    return this.#joining === null ? null : `joining the cluster through ${this.#joining}`;
  }

  /**
   * The supervisor's check when a ping tells a peer's node id: false for a
   * removed node, or a second address of a node another peer already reaches
   * (the peer is then dropped).
   */
  admit(peer: Peer, nodeId: string): boolean {
    const removed = this.membership.selfRemoved || this.membership.isRemoved(nodeId);
    if (removed) this.#noteRemovedAt(peer.url, nodeId);
    const duplicate =
      !this.#addresses.has(peer.url) &&
      this.#deps.peers.some((other) => other !== peer && other.nodeId === nodeId);
    if (!removed && !duplicate) return true;
    // A microtask, not a timer: it runs before any timer, on virtual time too.
    queueMicrotask(() => this.reconcile());
    return false;
  }

  /** Brings the peer list in line with the addresses and the member list. */
  reconcile(): void {
    if (this.#stopped) return;
    const desired = this.#desired();
    for (const peer of [...this.#deps.peers]) {
      const id = peer.nodeId ?? peer.sender.peerNodeId;
      const removed = id !== null && this.membership.isRemoved(id);
      if (removed) {
        // Its address reaches a removed node: not a peer again while it stays removed.
        this.#noteRemovedAt(peer.url, id);
        desired.delete(peer.url);
      }
      if (!desired.has(peer.url) || removed) this.#drop(peer, removed);
    }
    for (const url of desired.keys()) {
      if (this.#deps.peers.some((peer) => peer.url === url)) continue;
      this.#deps.onPeerUrl(url);
      this.#deps.peers.push(this.#deps.createPeer(url));
      this.#deps.log.info({ peer: url }, 'member peer added');
    }
  }

  /** What the member routes serve. */
  service(): MemberService {
    return {
      view: () => this.#view(),
      add: async (url) => this.#add(url),
      remove: (id) => this.#remove(id),
      merge: (exchange) => {
        this.membership.merge(exchange.members);
        this.#merged(exchange, false);
        return { members: this.membership.rows(), peers: this.#addressList() };
      },
    };
  }

  #desired(): Map<string, 'address' | 'member'> {
    const desired = new Map<string, 'address' | 'member'>();
    if (this.membership.selfRemoved) return desired;
    for (const url of this.#addresses) {
      const removedId = this.#removedAt.get(url);
      if (removedId !== undefined && this.membership.isRemoved(removedId)) continue;
      desired.set(url, 'address');
    }
    for (const row of this.membership.others()) {
      // A node this node already reaches at another address needs no second peer.
      const reached = this.#deps.peers.some(
        (peer) => peer.url !== row.url && (peer.nodeId ?? peer.sender.peerNodeId) === row.nodeId,
      );
      if (!reached && !desired.has(row.url)) desired.set(row.url, 'member');
    }
    return desired;
  }

  /**
   * Remembers, also over a restart, that `url` reaches the removed node `nodeId`: a peer
   * there that is down for good would otherwise stay unidentified after a restart with an
   * old --peers, and an unidentified member holds the tombstone horizon back.
   */
  #noteRemovedAt(url: string, nodeId: string): void {
    if (this.#removedAt.get(url) === nodeId) return;
    this.#removedAt.set(url, nodeId);
    try {
      this.#deps.store.setRemovedAddress(url, nodeId);
    } catch (error) {
      // A full disk: remembered until the process ends.
      this.#deps.log.warn({ err: error, url }, 'could not persist a removed node address');
    }
  }

  #drop(peer: Peer, tell: boolean): void {
    const index = this.#deps.peers.indexOf(peer);
    if (index < 0) return;
    this.#deps.peers.splice(index, 1);
    peer.sender.stop();
    this.#deps.store.dropPeerCursor(peer.url);
    this.#deps.log.info({ peer: peer.url, nodeId: peer.nodeId }, 'member peer dropped');
    if (!tell) {
      void peer.client.close();
      return;
    }
    this.#leaving.set(peer.url, peer.client);
    void this.gossip.farewell(peer.url).finally(() => {
      this.#leaving.delete(peer.url);
      return peer.client.close();
    });
  }

  #merged(answer: MemberExchange, joining: boolean): void {
    if (joining) {
      const learnt = [
        this.#deps.join!,
        ...answer.peers
          .filter((peer) => peer.nodeId !== this.#deps.selfNodeId)
          .map((peer) => peer.url),
      ];
      for (const url of learnt) this.#addresses.add(url);
      this.#deps.store.addPeerAddresses(learnt);
    }
    if (this.membership.selfRemoved && !this.#wasRemoved) {
      this.#deps.log.warn('this node was removed from the cluster: it stops replicating');
    }
    this.#wasRemoved = this.membership.selfRemoved;
    this.reconcile();
  }

  #startJoin(url: string): void {
    if (this.membership.selfRemoved) {
      this.#deps.log.warn('this node was removed from the cluster; --join does not add it back');
      return;
    }
    this.#joining = url;
    let attempts = 0;
    const attempt = (): void => {
      if (this.#stopped) return;
      this.gossip.join(url).then(
        () => {
          this.#joining = null;
          this.#deps.log.info({ via: url, peers: this.#deps.peers.length }, 'joined');
        },
        (error: unknown) => {
          attempts += 1;
          const message = error instanceof Error ? error.message : String(error);
          if (attempts === 1 || attempts % 10 === 0) {
            this.#deps.log.warn({ via: url, attempts, err: message }, 'cannot join yet; retrying');
          }
          this.#runtime.setTimeout(attempt, Math.min(5_000, 250 * attempts), true);
        },
      );
    };
    attempt();
  }

  async #exchange(url: string, body: string): Promise<unknown> {
    const known =
      this.#deps.peers.find((peer) => peer.url === url)?.client ?? this.#leaving.get(url);
    const client = known ?? this.#deps.clientFor(url);
    try {
      return (await client.call('POST', '/sync/members', body)).json;
    } finally {
      if (known === undefined) await client.close();
    }
  }

  /** Everyone to keep exchanging member lists with: our addresses and every other row's URL. */
  #contacts(): string[] {
    const urls = new Set(this.#addresses);
    for (const row of this.membership.rows()) {
      if (row.nodeId !== this.#deps.selfNodeId) urls.add(row.url);
    }
    return [...urls];
  }

  /** This node's peers it knows the id of: what a joining node starts from. */
  #addressList(): MemberExchange['peers'] {
    return this.#deps.peers
      .filter((peer) => peer.nodeId !== null && peer.state !== 'self')
      .map((peer) => ({ nodeId: peer.nodeId!, url: peer.url }));
  }

  async #add(rawUrl: unknown): Promise<{ url: string; nodeId: string; added: boolean }> {
    const url = normaliseUrl(rawUrl, 'url');
    const client = this.#deps.clientFor(url);
    let nodeId: string;
    try {
      nodeId = (await client.ping(this.#deps.wallMs)).nodeId;
    } catch (cause) {
      throw new PeerkvError('MEMBER_UNREACHABLE', `${url} did not answer a ping`, { cause });
    } finally {
      await client.close();
    }
    // Decide on the latest lists the reachable members hold (see MembershipGossip.refresh).
    let timer: TimerHandle | undefined;
    await Promise.race([
      this.gossip.refresh(),
      new Promise<void>((resolve) => {
        timer = this.#runtime.setTimeout(resolve, limits.memberAddRefreshMsMax, true);
      }),
    ]);
    this.#runtime.clearTimeout(timer);
    if (this.membership.isRemoved(nodeId) && this.isClosed(nodeId)) {
      throw new PeerkvError(
        'MEMBER_CLOSED',
        `${nodeId} was removed long enough ago that the cluster went on without its data: empty its --data-dir and start it with --join ${this.#deps.selfUrl} (it comes back as a new node)`,
      );
    }
    // A node this one already replicates with (from --peers, say) is a member already.
    const reached =
      nodeId === this.#deps.selfNodeId ||
      (!this.membership.isRemoved(nodeId) &&
        this.#deps.peers.some((peer) => peer.nodeId === nodeId));
    const added = !reached && this.membership.add(nodeId, url);
    if (this.#removedAt.delete(url)) this.#deps.store.setRemovedAddress(url, null);
    this.reconcile();
    this.gossip.kick();
    return { url, nodeId, added };
  }

  #remove(id: string): MemberRow {
    let nodeId: string | undefined;
    let url: string | undefined;
    if (NODE_ID_PATTERN.test(id)) {
      nodeId = id;
      url =
        this.membership.row(id)?.url ??
        this.#deps.peers.find((peer) => peer.nodeId === id)?.url ??
        (id === this.#deps.selfNodeId ? this.#deps.selfUrl : undefined);
    } else {
      url = normaliseUrl(id, 'member');
      nodeId =
        this.#deps.peers.find((peer) => peer.url === url)?.nodeId ??
        this.membership.rows().find((row) => row.url === url)?.nodeId ??
        (url === this.#deps.selfUrl ? this.#deps.selfNodeId : undefined);
    }
    if (nodeId === undefined || url === undefined) {
      throw new PeerkvError('NOT_FOUND', `no member ${id.slice(0, 200)} (by node id or URL)`);
    }
    const row = this.membership.remove(nodeId, url);
    this.reconcile();
    this.gossip.kick();
    return row;
  }

  #view(): MemberView {
    const self = this.#deps.selfNodeId;
    const rows = new Map(this.membership.rows().map((row) => [row.nodeId, row]));
    const members: MemberView['members'] = [];
    const listed = new Set<string>();
    for (const row of rows.values()) {
      listed.add(row.nodeId);
      members.push({ ...row, self: row.nodeId === self });
    }
    if (!listed.has(self)) {
      members.push({
        nodeId: self,
        url: this.#deps.selfUrl,
        state: 'member',
        version: null,
        self: true,
      });
    }
    for (const peer of this.#deps.peers) {
      if (peer.nodeId === null || listed.has(peer.nodeId) || peer.state === 'self') continue;
      listed.add(peer.nodeId);
      members.push({
        nodeId: peer.nodeId,
        url: peer.url,
        state: 'member',
        version: null,
        self: false,
      });
    }
    members.sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
    return { self: { nodeId: self, url: this.#deps.selfUrl }, members };
  }
}
