/**
 * The node's watchers: at most `watchersMax` at once, each told when the
 * writer commits (coalesced to one notification per turn), each sent a
 * heartbeat comment every `heartbeatMs` so idle streams stay open through
 * proxies. Shutdown ends every stream.
 */
import type { Logger } from 'pino';
import { PeerkvError } from '../errors.ts';
import { Watcher, type WatcherOptions, type WatchSink, type WatchSource } from './watcher.ts';

export interface WatchHubOptions {
  readonly watchersMax: number;
  readonly heartbeatMs: number;
  readonly log: Logger;
}

export class WatchHub {
  readonly #source: WatchSource;
  readonly #options: WatchHubOptions;
  readonly #watchers = new Set<Watcher>();
  #heartbeat: NodeJS.Timeout | undefined;
  #scheduled = false;
  #cutOff = 0;

  constructor(source: WatchSource, options: WatchHubOptions) {
    this.#source = source;
    this.#options = options;
  }

  get size(): number {
    return this.#watchers.size;
  }

  /** Watchers cut off as too slow since the start. */
  get cutOff(): number {
    return this.#cutOff;
  }

  /** Throws TOO_MANY_WATCHERS at the bound (before a stream is started). */
  assertRoom(): void {
    if (this.#watchers.size >= this.#options.watchersMax) {
      throw new PeerkvError(
        'TOO_MANY_WATCHERS',
        `this node serves at most ${this.#options.watchersMax} watchers`,
        { headers: { 'Retry-After': '5' } },
      );
    }
  }

  /** Registers a watcher over `sink`; throws TOO_MANY_WATCHERS at the bound. */
  open(sink: WatchSink, options: WatcherOptions, onEnd: (cut: boolean) => void): Watcher {
    this.assertRoom();
    const watcher = new Watcher(this.#source, sink, options, (why) => {
      this.#watchers.delete(watcher);
      if (why !== 'closed') {
        this.#cutOff += 1;
        this.#options.log.debug({ why }, 'watcher cut off');
      }
      if (this.#watchers.size === 0) this.#stopHeartbeat();
      onEnd(why !== 'closed');
    });
    this.#watchers.add(watcher);
    this.#startHeartbeat();
    watcher.notify();
    return watcher;
  }

  /** The writer committed: every watcher reads what is new, on the next turn. */
  notify(): void {
    if (this.#scheduled || this.#watchers.size === 0) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      for (const watcher of this.#watchers) watcher.notify();
    });
  }

  closeAll(): void {
    for (const watcher of [...this.#watchers]) watcher.close();
    this.#stopHeartbeat();
  }

  #startHeartbeat(): void {
    if (this.#heartbeat) return;
    this.#heartbeat = setInterval(() => {
      for (const watcher of this.#watchers) watcher.heartbeat();
    }, this.#options.heartbeatMs);
    this.#heartbeat.unref();
  }

  #stopHeartbeat(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }
}
