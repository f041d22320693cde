/**
 * Watches the peers. Every ping period each peer gets `GET /ping` (bounded by
 * the timeout); a peer is up or down, and a change of state is logged once.
 * The ping's node-id header identifies the peer: this node found in --peers
 * is dropped, and a peer whose id changed (a wiped data dir) gets its cursor
 * reset and a digest resync. A resync also runs when a peer comes up, at
 * start-up, and every few periods as anti-entropy.
 */
import type { Logger } from 'pino';
import type { PeerStatus } from './client/types.ts';
import { replicationLimits as bounds } from './limits.ts';
import type { PeerSender, SenderStats } from './replication/peer-sender.ts';
import type { PeerTransport, PingAnswer } from './replication/peer-transport.ts';
import { nodeRuntime, type Runtime, type TimerHandle } from './runtime.ts';
import type { ResyncReport } from './sync/resync.ts';
import type { AckReport } from './tombstones/stability.ts';

export type PeerState = 'unknown' | 'up' | 'down' | 'self';

export interface ResyncRecord extends Partial<ResyncReport> {
  readonly at: string;
  readonly trigger: string;
  readonly durationMs: number;
  readonly error?: string;
}

export interface Peer {
  readonly url: string;
  readonly client: PeerTransport;
  readonly sender: PeerSender;
  state: PeerState;
  nodeId: string | null;
  lastSeenWallMs: number | null;
  clockOffsetMs: number | null;
  /**
   * The highest version timestamp the peer's clock had reached at its last
   * ping (0: not known). Kept while the peer is down: versions up to it were
   * accepted under that node's bound and may reach us through another peer.
   */
  clockHigh: number;
  rttMs: number | null;
  skewed: boolean;
  /** The peer answers with our own node id from another process. */
  idConflict: boolean;
  /** The largest value the peer accepts, from its ping (null: it does not say). */
  valueBytesMax: number | null;
  resyncing: boolean;
  resyncWanted: string | null;
  /** When the wanted resync was asked for, and when it may start (monotonic clock). */
  resyncWantedAtMonoMs: number;
  resyncNotBeforeMonoMs: number;
  /**
   * Resyncs in a row that yielded to the peer being busy and found it had
   * moved nothing since the last (0 again once it moves): a long rebuild is
   * waited out, a peer stuck saying it is busy is not.
   */
  resyncDeferrals: number;
  /** What the busy peer said its resyncs had moved, at our last yield to it. */
  busyPeerMoved: number | undefined;
  /**
   * When the busy peer was first seen busy in this run of yields, or last
   * seen to move (monotonic clock; undefined: no yield since a resync ran).
   */
  busyPeerMovedAtMonoMs: number | undefined;
  /** Resyncs with the peer that failed in a row (0 after one that ran, or a comeback). */
  resyncFailures: number;
  lastResync: ResyncRecord | null;
  /**
   * The last resync of ours with the peer that ran whole with nothing refused
   * (the peer then held every entry we held, or a newer one): when it started
   * (monotonic clock) and the peer's node id.
   */
  wholeResync: { readonly startedMonoMs: number; readonly nodeId: string } | null;
  /** The peer's last tombstone horizon and acknowledgements (src/tombstones/). */
  ackReport: AckReport | null;
  resyncTotals: {
    runs: number;
    entriesSent: number;
    entriesReceived: number;
    bytesSent: number;
    bytesReceived: number;
  };
}

/** A peer as it starts: nothing known of it yet. */
export function newPeer(url: string, client: PeerTransport, sender: PeerSender): Peer {
  return {
    url,
    client,
    sender,
    state: 'unknown',
    nodeId: null,
    lastSeenWallMs: null,
    clockOffsetMs: null,
    clockHigh: 0,
    rttMs: null,
    skewed: false,
    idConflict: false,
    valueBytesMax: null,
    resyncing: false,
    resyncWanted: null,
    resyncWantedAtMonoMs: 0,
    resyncNotBeforeMonoMs: 0,
    resyncDeferrals: 0,
    busyPeerMoved: undefined,
    busyPeerMovedAtMonoMs: undefined,
    resyncFailures: 0,
    lastResync: null,
    wholeResync: null,
    ackReport: null,
    resyncTotals: { runs: 0, entriesSent: 0, entriesReceived: 0, bytesSent: 0, bytesReceived: 0 },
  };
}

export interface SupervisorDeps {
  readonly selfNodeId: string;
  /** This process's nonce, announced in X-Peerkv-Instance: how the node knows itself. */
  readonly selfInstanceId: string;
  readonly peers: readonly Peer[];
  readonly pingIntervalMs: number;
  /** Time between anti-entropy digest comparisons with each peer. */
  readonly antiEntropyIntervalMs: number;
  readonly clockSkewMsMax: number;
  /** How far our own clock runs ahead of the wall clock (reported when past clockSkewMsMax). */
  readonly clockAheadMs: () => number;
  /** Our --max-value-bytes, compared with what each peer announces. */
  readonly valueBytesMax: number;
  readonly wallMs: () => number;
  readonly log: Logger;
  readonly runResync: (peer: Peer, yieldToBusyPeer: boolean) => Promise<ResyncReport>;
  readonly random: () => number;
  /** Until this long after start-up, this node is the one recovering: it resyncs at once. */
  readonly startupWindowMs: number;
  /**
   * How long a busy peer may move nothing before our wanted resync stops
   * yielding to it, past resyncYieldsMax looks (the node: its --timeout, so
   * one slow call of the peer's resync, as the wiped node's first ones at a
   * million keys, is waited out). Default 0: the looks alone bound it.
   */
  readonly busyPeerStallMs?: number;
  /** Told of every finished resync (for metrics); failed ones carry `error`. */
  readonly onResyncDone?: (record: ResyncRecord) => void;
  /** Whether a peer that answered as `nodeId` may replicate (false: a removed member). */
  readonly admit?: (peer: Peer, nodeId: string) => boolean;
  /** Monotonic clock and timers (default: Node's); the simulator passes virtual ones. */
  readonly runtime?: Runtime;
}

/** How soon a peer that has never answered is pinged again during the start-up window. */
const UNSEEN_RETRY_MS = 500;
/** Doublings of a failed resync's retry wait (past them, resyncRetryMsMax bounds it anyway). */
const RETRY_DOUBLINGS_MAX = 16;

export class Supervisor {
  readonly #deps: SupervisorDeps;
  readonly #runtime: Runtime;
  #timer: TimerHandle | undefined;
  /** Early re-pings of peers that have not answered yet (see #retryUnseen). */
  readonly #retries = new Map<Peer, TimerHandle>();
  #ticks = 0;
  #stopped = false;
  #ticking: Promise<void> = Promise.resolve();
  #resyncsRunning = 0;
  #resyncMoved = 0;
  #clockAhead = false;
  readonly #startedMonoMs: number;
  #lastAntiEntropyMonoMs: number;

  constructor(deps: SupervisorDeps) {
    this.#deps = deps;
    this.#runtime = deps.runtime ?? nodeRuntime;
    this.#startedMonoMs = this.#runtime.monoMs();
    this.#lastAntiEntropyMonoMs = this.#startedMonoMs;
  }

  start(): void {
    const loop = () => {
      if (this.#stopped) return;
      this.#ticking = this.tick().finally(() => {
        if (!this.#stopped) this.#timer = this.#runtime.setTimeout(loop, this.#deps.pingIntervalMs);
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#runtime.clearTimeout(this.#timer);
    for (const timer of this.#retries.values()) this.#runtime.clearTimeout(timer);
    this.#retries.clear();
    await this.#ticking;
  }

  /** One round of pings; resyncs are started, not awaited. */
  async tick(): Promise<void> {
    this.#ticks += 1;
    this.#checkOwnClock();
    const now = this.#runtime.monoMs();
    const antiEntropy = now - this.#lastAntiEntropyMonoMs >= this.#deps.antiEntropyIntervalMs;
    if (antiEntropy) this.#lastAntiEntropyMonoMs = now;
    await Promise.all(
      this.#deps.peers
        .filter((peer) => peer.state !== 'self')
        .map((peer) => this.#ping(peer, antiEntropy)),
    );
  }

  /**
   * The sender skipped entries the peer refused. Some refusals pass (a version
   * ahead of the peer's clock is taken once its clock allows): a later resync
   * offers them again.
   */
  noteRefused(peer: Peer): void {
    if (peer.state !== 'up') return;
    this.#want(peer, 'refused');
    peer.resyncNotBeforeMonoMs = Math.max(
      peer.resyncNotBeforeMonoMs,
      this.#runtime.monoMs() + 2 * this.#deps.pingIntervalMs,
    );
  }

  /** Asks for a resync with the peer (it starts as `#want` allows; nothing if one is wanted already). */
  wantResync(peer: Peer, trigger: string): void {
    if (peer.state !== 'up' || this.#stopped) return;
    this.#want(peer, trigger);
    this.#maybeResync(peer);
  }

  /** Whether a resync of ours is running. */
  get resyncing(): boolean {
    return this.#resyncsRunning > 0;
  }

  /** Entries our resyncs have moved since the node started (told by each resync as they move). */
  get resyncMoved(): number {
    return this.#resyncMoved;
  }

  noteResyncMoved(entries: number): void {
    this.#resyncMoved += entries;
  }

  /**
   * Both sides notice a recovery. The node that just started resyncs at once;
   * the other waits two ping periods, then yields while the peer is busy and
   * finds the digests equal once the peer has brought it level.
   */
  #want(peer: Peer, trigger: string, again = false): void {
    const now = this.#runtime.monoMs();
    const recovering = now - this.#startedMonoMs < this.#deps.startupWindowMs;
    const notBefore =
      recovering || trigger === 'anti-entropy' ? now : now + 2 * this.#deps.pingIntervalMs;
    // `again`: the same want, after its resync yielded or failed, not a new comeback.
    const comeback = !again && (trigger === 'new-peer' || trigger === 'recovered');
    // A peer back (as itself, or wiped) is a new start: earlier failures say nothing of it,
    // nor yields to its last life (whose resyncMoved count it no longer has). Yields used up
    // then made the node push a wiped peer the whole store as it rebuilt itself (CI, the
    // rebuild-once test: the resync that ran after five yields failed as the peer was killed).
    if (comeback) {
      peer.resyncFailures = 0;
      peer.resyncDeferrals = 0;
      peer.busyPeerMoved = undefined;
      peer.busyPeerMovedAtMonoMs = undefined;
    }
    if (peer.resyncWanted) {
      // A retry still pending (a resync that failed as the peer went down) when the peer
      // comes back waits like a new one: the node that just started resyncs first, and a
      // wiped one is filled once (test/unit/supervisor-want.test.ts). A retry backed off
      // after failures waits no longer than a new one.
      if (comeback) peer.resyncNotBeforeMonoMs = notBefore;
      return;
    }
    peer.resyncWanted = trigger;
    peer.resyncWantedAtMonoMs = now;
    peer.resyncNotBeforeMonoMs = notBefore;
  }

  async #ping(peer: Peer, antiEntropy: boolean): Promise<void> {
    let answer: PingAnswer;
    try {
      answer = await peer.client.ping(this.#deps.wallMs);
    } catch (error) {
      this.#markDown(peer, error);
      this.#retryUnseen(peer);
      return;
    }
    // The peer may have left the cluster while the ping was out.
    if (this.#stopped || !this.#deps.peers.includes(peer)) return;
    if (this.#isSelf(answer)) {
      peer.state = 'self';
      peer.sender.stop();
      this.#deps.log.info({ peer: peer.url }, 'peer is this node; skipping it');
      return;
    }
    if (this.#checkIdConflict(peer, answer.nodeId)) return;
    if (this.#deps.admit && !this.#deps.admit(peer, answer.nodeId)) return;
    peer.lastSeenWallMs = this.#deps.wallMs();
    peer.rttMs = answer.rttMs;
    this.#checkLimits(peer, answer.valueBytesMax);
    this.#checkClock(peer, answer.timeWallMs - (answer.sentAtWallMs + answer.rttMs / 2));
    if (answer.clockHigh !== null) peer.clockHigh = Math.max(peer.clockHigh, answer.clockHigh);
    if (peer.nodeId !== answer.nodeId) peer.ackReport = null;
    if (answer.ackReport) peer.ackReport = answer.ackReport;
    if (peer.nodeId !== null && peer.nodeId !== answer.nodeId) {
      this.#deps.log.warn(
        { peer: peer.url, was: peer.nodeId, now: answer.nodeId },
        'peer node id changed',
      );
    }
    peer.nodeId = answer.nodeId;
    const wasUp = peer.state === 'up';
    const fresh = peer.sender.activate(answer.nodeId);
    if (!wasUp) {
      peer.state = 'up';
      this.#deps.log.info({ peer: peer.url, nodeId: answer.nodeId }, 'peer up');
    }
    if (fresh) this.#want(peer, 'new-peer');
    else if (!wasUp) this.#want(peer, 'recovered');
    // While changes to the peer are in flight the digests differ anyway: try next round.
    else if (antiEntropy && peer.sender.pending === 0) this.#want(peer, 'anti-entropy');
    this.#maybeResync(peer);
  }

  /**
   * Nodes started together (`npm start`) ping each other before all of them
   * listen. A peer that has never answered is asked again within a second
   * during the start-up window, not a whole ping period later, so their
   * first writes replicate at once.
   */
  #retryUnseen(peer: Peer): void {
    if (this.#stopped || peer.lastSeenWallMs !== null || this.#retries.has(peer)) return;
    const delayMs = Math.min(UNSEEN_RETRY_MS, this.#deps.pingIntervalMs / 2);
    const elapsedMs = this.#runtime.monoMs() - this.#startedMonoMs;
    if (elapsedMs + delayMs > this.#deps.startupWindowMs) return;
    const timer = this.#runtime.setTimeout(
      () => {
        this.#retries.delete(peer);
        if (this.#stopped || peer.state === 'up' || !this.#deps.peers.includes(peer)) return;
        void this.#ping(peer, false);
      },
      delayMs,
      true,
    );
    this.#retries.set(peer, timer);
  }

  #markDown(peer: Peer, error: unknown): void {
    if (this.#stopped || peer.state === 'down') return;
    const was = peer.state;
    peer.state = 'down';
    peer.sender.deactivate();
    const reason = error instanceof Error ? error.message : String(error);
    if (was === 'up') this.#deps.log.warn({ peer: peer.url, reason }, 'peer down');
    else this.#deps.log.info({ peer: peer.url, reason }, 'peer not reachable yet');
  }

  /** This process, recognised by its per-process nonce (by node id only for a peer that sends none). */
  #isSelf(answer: { nodeId: string; instanceId: string | null }): boolean {
    if (answer.instanceId !== null) return answer.instanceId === this.#deps.selfInstanceId;
    return answer.nodeId === this.#deps.selfNodeId;
  }

  /**
   * Another live process answering with our node id (a copied data dir): our
   * versions can collide with its. Neither replicates to the other; writes are
   * refused (see idConflict) until one of them gets a new id. Returns true
   * while the peer is such a twin.
   */
  #checkIdConflict(peer: Peer, nodeId: string): boolean {
    const twin = nodeId === this.#deps.selfNodeId;
    if (twin && !peer.idConflict) {
      this.#deps.log.error(
        { peer: peer.url, nodeId },
        'another process runs with this node id; writes refused until one gets a new id (peerkv new-id)',
      );
      peer.sender.deactivate();
    } else if (!twin && peer.idConflict) {
      this.#deps.log.info({ peer: peer.url, nodeId }, 'node id conflict resolved');
    }
    peer.idConflict = twin;
    if (twin) {
      peer.state = 'up';
      peer.lastSeenWallMs = this.#deps.wallMs();
    }
    return twin;
  }

  /** Whether some peer answers with our node id from another process. */
  get idConflict(): boolean {
    return this.#deps.peers.some((peer) => peer.idConflict);
  }

  /** Our clock ahead of wall time (it observed a version from the future): log it once. */
  #checkOwnClock(): void {
    const aheadMs = this.#deps.clockAheadMs();
    const ahead = aheadMs > this.#deps.clockSkewMsMax;
    if (ahead && !this.#clockAhead) {
      this.#deps.log.warn(
        { aheadOfWallMs: aheadMs, maxMs: this.#deps.clockSkewMsMax },
        'this node clock runs ahead of wall time (it observed versions from the future)',
      );
    } else if (!ahead && this.#clockAhead)
      this.#deps.log.info('this node clock back near wall time');
    this.#clockAhead = ahead;
  }

  /** A peer that accepts smaller values than we do will refuse some of ours: say so once. */
  #checkLimits(peer: Peer, valueBytesMax: number | null): void {
    if (valueBytesMax === peer.valueBytesMax) return;
    peer.valueBytesMax = valueBytesMax;
    if (valueBytesMax !== null && valueBytesMax < this.#deps.valueBytesMax) {
      this.#deps.log.warn(
        {
          peer: peer.url,
          peerValueBytesMax: valueBytesMax,
          valueBytesMax: this.#deps.valueBytesMax,
        },
        'peer accepts smaller values than this node; larger ones will be refused by it',
      );
    }
  }

  #checkClock(peer: Peer, offsetMs: number): void {
    peer.clockOffsetMs = Math.round(offsetMs);
    const skewed = Math.abs(offsetMs) > this.#deps.clockSkewMsMax;
    if (skewed && !peer.skewed) {
      this.#deps.log.warn(
        { peer: peer.url, offsetMs: peer.clockOffsetMs, maxMs: this.#deps.clockSkewMsMax },
        'peer clock skew exceeds the bound',
      );
    } else if (!skewed && peer.skewed)
      this.#deps.log.info({ peer: peer.url }, 'peer clock skew back within bound');
    peer.skewed = skewed;
  }

  /**
   * How long a failed resync waits to run again. One slot serves every peer,
   * so a peer that answers pings but hangs on the rest would hold it for the
   * whole timeout of every retry, and a healthy peer's resync would wait, or
   * yield to a peer as stuck as we are (CI, a 10 s convergence missed). The
   * wait is at least the failed attempt's length, so such a peer holds the
   * slot at most half the time, and it doubles with each failure in a row up
   * to resyncRetryMsMax. A quick failure retries after a ping period.
   */
  #retryDelayMs(peer: Peer, attemptMs: number): number {
    const base = Math.max(this.#deps.pingIntervalMs, attemptMs);
    const doubled = base * 2 ** Math.min(peer.resyncFailures - 1, RETRY_DOUBLINGS_MAX);
    const jitter = 1 + this.#deps.random() / 2;
    return Math.min(bounds.resyncRetryMsMax, doubled * jitter);
  }

  #maybeResync(peer: Peer): void {
    const trigger = peer.resyncWanted;
    if (!trigger || peer.resyncing || peer.state !== 'up' || this.#stopped) return;
    if (this.#resyncsRunning >= bounds.resyncsConcurrentMax) return;
    const now = this.#runtime.monoMs();
    if (now < peer.resyncNotBeforeMonoMs) return;
    // A wanted resync is never dropped on a peer's word (anyone can call
    // /sync/digest with a peer's id): it runs, and costs one digest exchange
    // when the peer already brought us level. It yields to a peer busy
    // resyncing itself while that moves entries; once resyncYieldsMax looks
    // in a row, and busyPeerStallMs, saw nothing move, it runs anyway.
    peer.resyncWanted = null;
    peer.resyncing = true;
    this.#resyncsRunning += 1;
    const started = this.#runtime.monoMs();
    const at = new Date(this.#deps.wallMs()).toISOString();
    const recovering = this.#runtime.monoMs() - this.#startedMonoMs < this.#deps.startupWindowMs;
    const stillMs = now - (peer.busyPeerMovedAtMonoMs ?? Number.NEGATIVE_INFINITY);
    const stalled =
      peer.resyncDeferrals >= bounds.resyncYieldsMax &&
      stillMs >= (this.#deps.busyPeerStallMs ?? 0);
    const mayYield = !recovering && !stalled;
    const jumps = peer.sender.jumps;
    const refusals = peer.sender.refusals;
    const nodeId = peer.nodeId;
    this.#deps
      .runResync(peer, mayYield)
      .then(
        (report) => {
          peer.resyncFailures = 0;
          // A resync that ran whole, with nothing refused, brought the peer level
          // with us (src/tombstones/ trusts the cursor again from then on).
          if (report.result !== 'deferred' && report.entriesRefused === 0) {
            peer.sender.markLevel(jumps);
            peer.sender.settleRefusals(refusals);
            if (report.entriesBehindHorizon === 0 && report.entriesOfRemoved === 0 && nodeId) {
              peer.wholeResync = { startedMonoMs: started, nodeId };
            }
          }
          noteYield(peer, report, this.#runtime.monoMs());
          if (report.result === 'deferred') {
            // The peer is resyncing itself and will reach us; look again later.
            this.#want(peer, trigger, true);
            peer.resyncNotBeforeMonoMs =
              this.#runtime.monoMs() + this.#deps.pingIntervalMs * (1 + this.#deps.random());
          }
          peer.lastResync = {
            at,
            trigger,
            durationMs: Math.round(this.#runtime.monoMs() - started),
            ...report,
          };
          this.#deps.onResyncDone?.(peer.lastResync);
          const totals = peer.resyncTotals;
          totals.runs += 1;
          totals.entriesSent += report.entriesSent;
          totals.entriesReceived += report.entriesReceived;
          totals.bytesSent += report.bytesSent;
          totals.bytesReceived += report.bytesReceived;
          if (report.result === 'synced')
            this.#deps.log.info({ peer: peer.url, ...peer.lastResync }, 'resync done');
          if (report.entriesBehindHorizon > 0) {
            this.#deps.log.error(
              { peer: peer.url, refused: report.entriesBehindHorizon },
              'peer refused entries older than its tombstone horizon: this node holds data the cluster removed; rebuild it from its peers (stop it, empty its --data-dir, start it with --join)',
            );
          }
        },
        (error: unknown) => {
          const message = error instanceof Error ? error.message : String(error);
          peer.lastResync = {
            at,
            trigger,
            durationMs: Math.round(this.#runtime.monoMs() - started),
            error: message,
          };
          this.#deps.onResyncDone?.(peer.lastResync);
          this.#want(peer, trigger, true);
          peer.resyncFailures += 1;
          const failedAt = this.#runtime.monoMs();
          peer.resyncNotBeforeMonoMs = failedAt + this.#retryDelayMs(peer, failedAt - started);
          this.#deps.log.warn(
            { peer: peer.url, trigger, err: message },
            'resync failed; will retry',
          );
        },
      )
      .finally(() => {
        peer.resyncing = false;
        this.#resyncsRunning -= 1;
        for (const other of this.#deps.peers) this.#maybeResync(other);
      });
  }
}

/** Whether the busy peer said it had moved more entries than at our last yield to it. */
function gettingOn(peer: Peer, report: ResyncReport): boolean {
  const moved = report.peerResyncMoved;
  const before = peer.busyPeerMoved;
  return moved !== undefined && before !== undefined && moved > before;
}

/**
 * Yields in a row after this resync that found the busy peer had moved nothing: none once
 * one ran, or once the peer is getting on; one more for any other yield.
 */
export function deferralsAfter(peer: Peer, report: ResyncReport): number {
  if (report.result !== 'deferred' || gettingOn(peer, report)) return 0;
  return peer.resyncDeferrals + 1;
}

/** Notes a finished resync's yield (or that it ran) on the peer, at `nowMonoMs`. */
export function noteYield(peer: Peer, report: ResyncReport, nowMonoMs: number): void {
  const deferred = report.result === 'deferred';
  if (!deferred) peer.busyPeerMovedAtMonoMs = undefined;
  else if (peer.busyPeerMovedAtMonoMs === undefined || gettingOn(peer, report)) {
    peer.busyPeerMovedAtMonoMs = nowMonoMs;
  }
  peer.resyncDeferrals = deferralsAfter(peer, report);
  peer.busyPeerMoved = deferred ? report.peerResyncMoved : undefined;
}

export function peerStatus(peer: Peer, now: number): PeerStatus {
  const stats: SenderStats = peer.sender.stats();
  return {
    url: peer.url,
    nodeId: peer.nodeId,
    state: peer.state === 'self' ? 'unknown' : peer.state,
    lastSeen: peer.lastSeenWallMs === null ? null : new Date(peer.lastSeenWallMs).toISOString(),
    lastSeenAgoMs: peer.lastSeenWallMs === null ? null : Math.max(0, now - peer.lastSeenWallMs),
    rttMs: peer.rttMs === null ? null : Math.round(peer.rttMs * 10) / 10,
    clockOffsetMs: peer.clockOffsetMs,
    clockSkewed: peer.skewed,
    nodeIdConflict: peer.idConflict,
    valueBytesMax: peer.valueBytesMax,
    replication: {
      pendingChanges: stats.pendingChanges,
      oldestPendingAgeMs: stats.oldestPendingAgeMs,
      lagMsP50: stats.lagMsP50,
      lagMsP99: stats.lagMsP99,
      cursor: stats.cursor,
      batchesSent: stats.batchesSent,
      entriesSent: stats.entriesSent,
      bytesSent: stats.bytesSent,
      failures: stats.failures,
      lastError: stats.lastError,
      refusedEntries: stats.refusedEntries,
      lastRefused: stats.lastRefused,
    },
    resyncing: peer.resyncing,
    lastResync: peer.lastResync,
    resyncTotals: peer.resyncTotals,
  };
}
