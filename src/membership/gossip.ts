/**
 * Spreads the member list. Every period each peer that is up and whose last
 * exchange ended on a different list than ours now (or longer ago than the
 * full period) gets `POST /sync/members` with our rows; it merges them and
 * answers with its own, which we merge: one call carries a change both ways.
 * A member that was down when a change was made is reached once it is up
 * again, since our list has changed since our last exchange with it.
 *
 * `join` is the same exchange with a URL that is not a peer yet, made by a
 * node started with `--join`; `farewell` is one last exchange with a peer
 * that was just removed, so it learns it and stops replicating; `refresh` is a
 * round with every peer and contact at once, awaited, that an operator's add
 * decides on.
 */
import type { Logger } from 'pino';
import { nodeRuntime, type Runtime, type TimerHandle } from '../runtime.ts';
import { type MemberExchange, type Membership, parseMemberExchange } from './membership.ts';

export interface GossipPeer {
  readonly url: string;
  readonly state: string;
  readonly nodeId: string | null;
}

export interface GossipDeps {
  readonly membership: Membership;
  readonly peers: () => readonly GossipPeer[];
  /** URLs to exchange with that may not be peers: this node's addresses and every row's URL. */
  readonly contacts: () => readonly string[];
  /** POST /sync/members to `url` with `body`; resolves with the parsed answer. */
  readonly exchange: (url: string, body: string) => Promise<unknown>;
  /** Our own addresses for our peers, sent along (a joining node starts from them). */
  readonly addresses: () => MemberExchange['peers'];
  /** After a merge: start and stop replication as the list now says (`joining`: our --join). */
  readonly merged: (answer: MemberExchange, joining: boolean) => void;
  readonly intervalMs: number;
  /** Even with equal lists, exchange with each peer this often. */
  readonly fullIntervalMs: number;
  readonly monoMs: () => number;
  readonly log: Logger;
  /** Timers (the simulator passes virtual ones); Node's own when absent. */
  readonly runtime?: Runtime;
}

export class MembershipGossip {
  readonly #deps: GossipDeps;
  /** Per peer URL: the list digest our last exchange ended on, and when. */
  readonly #synced = new Map<string, { digest: string; atMs: number }>();
  /** Contacts whose last exchange failed, and when. */
  readonly #failedAt = new Map<string, number>();
  readonly #runtime: Runtime;
  #timer: TimerHandle | undefined;
  #running: Promise<void> = Promise.resolve();
  #stopped = false;
  #kicked = false;

  constructor(deps: GossipDeps) {
    this.#deps = deps;
    this.#runtime = deps.runtime ?? nodeRuntime;
  }

  start(): void {
    const loop = () => {
      if (this.#stopped) return;
      this.#running = this.tick().finally(() => {
        if (!this.#stopped) {
          this.#timer = this.#runtime.setTimeout(loop, this.#deps.intervalMs, true);
        }
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#runtime.clearTimeout(this.#timer);
    await this.#running;
  }

  /** Runs a round soon (after a change), besides the periodic ones; rounds asked together run once. */
  kick(): void {
    if (this.#kicked || this.#stopped) return;
    this.#kicked = true;
    this.#runtime.setImmediate(() => {
      this.#kicked = false;
      if (!this.#stopped) void this.tick();
    });
  }

  /**
   * One round: exchange with every up peer whose list may differ from ours,
   * and with the contacts that are not peers (a removed node and the members
   * that removed it keep exchanging, so an addition reaches it), a contact
   * that failed being tried again only after a while.
   */
  async tick(): Promise<void> {
    const { membership } = this.#deps;
    const now = this.#deps.monoMs();
    const digest = membership.digest();
    const due = (url: string): boolean => {
      const synced = this.#synced.get(url);
      return (
        synced === undefined ||
        synced.digest !== digest ||
        now - synced.atMs >= this.#deps.fullIntervalMs
      );
    };
    const peerUrls = new Set<string>();
    const urls: string[] = [];
    for (const peer of this.#deps.peers()) {
      peerUrls.add(peer.url);
      if (peer.state === 'up' && due(peer.url)) urls.push(peer.url);
    }
    const retryMs = Math.max(1_000, this.#deps.fullIntervalMs / 4);
    for (const url of this.#deps.contacts()) {
      if (peerUrls.has(url) || !due(url)) continue;
      if (now - (this.#failedAt.get(url) ?? Number.NEGATIVE_INFINITY) < retryMs) continue;
      urls.push(url);
    }
    await this.#exchangeAll(urls);
  }

  /**
   * Exchanges lists now with every peer and contact, whatever their state and however recent
   * the last exchange, and waits until each answered or failed: an operator's add decides on
   * the latest list the reachable members hold, not on what this node last heard (a removal
   * made elsewhere a moment ago must not make the add a no-op that the removal then undoes).
   */
  async refresh(): Promise<void> {
    const urls = new Set<string>();
    for (const peer of this.#deps.peers()) if (peer.state !== 'self') urls.add(peer.url);
    for (const url of this.#deps.contacts()) urls.add(url);
    await this.#exchangeAll([...urls]);
  }

  async #exchangeAll(urls: readonly string[]): Promise<void> {
    await Promise.all(
      urls.map((url) =>
        this.#exchangeWith(url).then(
          () => this.#failedAt.delete(url),
          (error: unknown) => {
            this.#failedAt.set(url, this.#deps.monoMs());
            this.#deps.log.debug(
              { peer: url, err: describe(error) },
              'member list exchange failed',
            );
          },
        ),
      ),
    );
  }

  /** Exchanges lists with the member at `url`; throws when it cannot be reached. */
  async join(url: string): Promise<void> {
    await this.#exchangeWith(url, true);
  }

  /** Tells a removed peer its new list once; failures are only logged. */
  async farewell(url: string): Promise<void> {
    this.#synced.delete(url);
    try {
      await this.#deps.exchange(url, this.#body());
    } catch (error) {
      this.#deps.log.debug({ peer: url, err: describe(error) }, 'could not tell a removed member');
    }
  }

  async #exchangeWith(url: string, joining = false): Promise<void> {
    const answer = parseMemberExchange(await this.#deps.exchange(url, this.#body()));
    this.#deps.membership.merge(answer.members);
    this.#deps.merged(answer, joining);
    this.#synced.set(url, {
      digest: this.#deps.membership.digest(),
      atMs: this.#deps.monoMs(),
    });
  }

  #body(): string {
    return JSON.stringify({
      members: this.#deps.membership.rows(),
      peers: this.#deps.addresses(),
    });
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
