// The simulated network between nodes: every call is a request message and an answer message,
// each delayed (so they reorder), possibly dropped or duplicated, and subject to per-direction
// cuts that hold until a heal. A caller whose request or answer is lost sees a timeout, as
// undici would; a call to a node that is down is refused after one delay (ECONNREFUSED).
// Answers come from the target's real peer handlers (src/http/sync-routes.ts peerHandlers), and
// a handler's PeerkvError becomes the status an HTTP node would answer with.
import { PeerkvError } from '../../src/errors.ts';
import {
  type PeerAnswer,
  PeerCallError,
  type PeerTransport,
  type PingAnswer,
} from '../../src/replication/peer-transport.ts';
import { chance, intBetween, type Rng } from './prng.ts';
import type { Owner, VirtualTime } from './virtual-time.ts';

/** What a node offers the network while it runs. */
export interface Endpoint {
  readonly owner: Owner;
  ping(): Omit<PingAnswer, 'sentAtWallMs' | 'rttMs'>;
  handle(method: string, path: string, body: string | undefined): Promise<string>;
}

/** How one direction of a link behaves until the next heal. */
export interface LinkState {
  cut: boolean;
  /** Probability that a message is lost, or delivered twice. */
  dropRate: number;
  duplicateRate: number;
  /** Extra delay drawn per message, up to this (reorders messages). */
  slowMsMax: number;
}

export interface NetworkOptions {
  readonly nodes: number;
  readonly timeoutMs: number;
  readonly delayMsMin: number;
  readonly delayMsMax: number;
}

export interface NetworkStats {
  messages: number;
  dropped: number;
  duplicated: number;
  refused: number;
  timeouts: number;
  internalErrors: string[];
}

export class Network {
  readonly #time: VirtualTime;
  readonly #rng: Rng;
  readonly #options: NetworkOptions;
  readonly #endpoints: (Endpoint | null)[];
  readonly #links: LinkState[][];
  readonly stats: NetworkStats = {
    messages: 0,
    dropped: 0,
    duplicated: 0,
    refused: 0,
    timeouts: 0,
    internalErrors: [],
  };

  constructor(time: VirtualTime, rng: Rng, options: NetworkOptions) {
    this.#time = time;
    this.#rng = rng;
    this.#options = options;
    this.#endpoints = Array.from({ length: options.nodes }, () => null);
    this.#links = Array.from({ length: options.nodes }, () =>
      Array.from({ length: options.nodes }, () => healthy()),
    );
  }

  attach(index: number, endpoint: Endpoint | null): void {
    this.#endpoints[index] = endpoint;
  }

  link(from: number, to: number): LinkState {
    return this.#links[from]![to]!;
  }

  healAll(): void {
    for (const row of this.#links) {
      for (let to = 0; to < row.length; to += 1) row[to] = healthy();
    }
  }

  /** The transport node `from` uses to reach node `to`. */
  transport(from: number, to: number, url: string, owner: Owner): PeerTransport {
    return {
      url,
      ping: async (wallMs) => {
        const sentAtWallMs = wallMs();
        const startedMs = this.#time.nowMs;
        const answer = await this.#exchange(from, to, owner, 'GET /ping', (target) =>
          Promise.resolve(target.ping()),
        );
        return { ...answer, sentAtWallMs, rttMs: this.#time.nowMs - startedMs };
      },
      call: async (method, path, body) => {
        const text = await this.#exchange(from, to, owner, `${method} ${path}`, (target) =>
          target.handle(method, path, body),
        );
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch (cause) {
          throw new PeerCallError(`${method} ${path} answered invalid JSON`, {
            code: 'PEER_BAD_ANSWER',
            cause,
          });
        }
        return { json, headers: {}, bytes: Buffer.byteLength(text) } satisfies PeerAnswer;
      },
      close: async () => {},
    };
  }

  #delay(link: LinkState): number {
    const { delayMsMin, delayMsMax } = this.#options;
    const slow = link.slowMsMax > 0 ? intBetween(this.#rng, 0, link.slowMsMax) : 0;
    return intBetween(this.#rng, delayMsMin, delayMsMax) + slow;
  }

  /** Whether a message on this link gets through (counts what is lost). */
  #passes(link: LinkState): boolean {
    this.stats.messages += 1;
    if (link.cut || chance(this.#rng, link.dropRate)) {
      this.stats.dropped += 1;
      return false;
    }
    return true;
  }

  /** One request and its answer; rejects with a PeerCallError as a real client would. */
  #exchange<T>(
    from: number,
    to: number,
    owner: Owner,
    what: string,
    serve: (target: Endpoint) => Promise<T>,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const settle = (outcome: () => void) => {
        if (settled || !owner.alive) return;
        settled = true;
        timer.cancelled = true;
        outcome();
      };
      const timer = this.#time.at(
        this.#options.timeoutMs,
        () =>
          settle(() => {
            this.stats.timeouts += 1;
            reject(new PeerCallError(`${what} failed: timed out`, { code: 'PEER_TIMEOUT' }));
          }),
        owner,
      );
      const answer = (result: { ok: T } | { error: unknown }) => {
        const back = this.link(to, from);
        if (!this.#passes(back)) return;
        this.#time.at(
          this.#delay(back),
          () => settle(() => ('ok' in result ? resolve(result.ok) : reject(result.error))),
          owner,
        );
      };
      const deliver = (primary: boolean) => {
        const target = this.#endpoints[to] ?? null;
        if (target === null || !target.owner.alive) {
          if (!primary) return;
          this.stats.refused += 1;
          answer({
            error: new PeerCallError(`${what} failed: ECONNREFUSED`, { code: 'PEER_UNREACHABLE' }),
          });
          return;
        }
        serve(target).then(
          (ok) => {
            if (primary && target.owner.alive) answer({ ok });
          },
          (error: unknown) => {
            if (!target.owner.alive) return;
            const failure = this.#asCallError(what, error);
            if (primary) answer({ error: failure });
          },
        );
      };
      const link = this.link(from, to);
      if (!this.#passes(link)) return;
      this.#time.at(this.#delay(link), () => deliver(true));
      if (chance(this.#rng, link.duplicateRate)) {
        this.stats.duplicated += 1;
        this.#time.at(this.#delay(link), () => deliver(false));
      }
    });
  }

  /** A handler's error as the status an HTTP node would answer; anything else is a 500 and noted. */
  #asCallError(what: string, error: unknown): PeerCallError {
    if (error instanceof PeerkvError) {
      return new PeerCallError(
        `${what} answered ${error.status}: ${JSON.stringify({ error: error.message, code: error.code })}`,
        { status: error.status },
      );
    }
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    this.stats.internalErrors.push(`${what}: ${message}`);
    return new PeerCallError(`${what} answered 500: internal error`, { status: 500 });
  }
}

function healthy(): LinkState {
  return { cut: false, dropRate: 0, duplicateRate: 0, slowMsMax: 0 };
}
