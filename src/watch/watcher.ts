/**
 * One watcher: a cursor over the node's change sequence. Replay and live
 * delivery are the same loop — read the changes after the cursor from the
 * store, a page at a time, write those under the prefix, move the cursor —
 * so there is no gap and no duplicate between them. The loop writes a page
 * only once the socket has drained the last one, so a watcher holds at most
 * one page in memory; one that stays stalled too long, or falls too far
 * behind while stalled, is cut off with an error event.
 */
import type { Change } from '../store/types.ts';
import { changeEvent, errorEvent, HEARTBEAT } from './watch-events.ts';

export interface WatchSource {
  readonly seq: number;
  changesSince(afterSeq: number, limit: number): Change[];
  wallMs(): number;
}

/** The writable side of the stream (a ServerResponse, or a fake in tests). */
export interface WatchSink {
  write(text: string): boolean;
  end(): void;
  once(event: 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
}

export interface WatcherOptions {
  /** Which keys this watcher is shown (its prefix, within what its token may read). */
  readonly matches: (key: string) => boolean;
  readonly afterSeq: number;
  readonly pageRows: number;
  readonly lagChangesMax: number;
  readonly drainTimeoutMs: number;
}

export type WatcherEnd = 'closed' | 'too-slow' | 'stalled';

export class Watcher {
  readonly #source: WatchSource;
  readonly #sink: WatchSink;
  readonly #options: WatcherOptions;
  readonly #onEnd: (why: WatcherEnd) => void;
  #cursor: number;
  #pumping = false;
  #wanted = false;
  #blocked = false;
  #ended = false;
  #drainTimer: NodeJS.Timeout | undefined;
  readonly #onDrain = (): void => {
    clearTimeout(this.#drainTimer);
    this.#blocked = false;
    this.notify();
  };

  constructor(
    source: WatchSource,
    sink: WatchSink,
    options: WatcherOptions,
    onEnd: (why: WatcherEnd) => void,
  ) {
    this.#source = source;
    this.#sink = sink;
    this.#options = options;
    this.#onEnd = onEnd;
    this.#cursor = options.afterSeq;
  }

  get cursor(): number {
    return this.#cursor;
  }

  /** New changes were committed (or the socket drained): deliver what is due. */
  notify(): void {
    if (this.#ended) return;
    if (this.#blocked) {
      if (this.#source.seq - this.#cursor > this.#options.lagChangesMax) this.#cut('too-slow');
      return;
    }
    this.#wanted = true;
    if (this.#pumping) return;
    this.#pumping = true;
    setImmediate(() => this.#pump());
  }

  heartbeat(): void {
    if (!this.#ended && !this.#blocked && !this.#sink.write(HEARTBEAT)) this.#block();
  }

  /** Ends the stream without an error event (client gone, or node shutting down). */
  close(): void {
    this.#finish('closed');
  }

  /** Writes pages until caught up, or until the socket needs to drain. */
  #pump(): void {
    this.#pumping = false;
    while (this.#wanted && !this.#ended && !this.#blocked) {
      this.#wanted = false;
      const changes = this.#source.changesSince(this.#cursor, this.#options.pageRows);
      if (changes.length === 0) return;
      const now = this.#source.wallMs();
      const text = changes
        .filter((change) => this.#options.matches(change.key))
        .map((change) => changeEvent(change, now))
        .join('');
      this.#cursor = changes.at(-1)!.seq;
      if (changes.length === this.#options.pageRows) this.#wanted = true;
      if (text.length > 0 && !this.#sink.write(text)) this.#block();
    }
  }

  #block(): void {
    this.#blocked = true;
    this.#sink.once('drain', this.#onDrain);
    this.#drainTimer = setTimeout(() => this.#cut('stalled'), this.#options.drainTimeoutMs);
    this.#drainTimer.unref();
    this.#wanted = true;
  }

  #cut(why: 'too-slow' | 'stalled'): void {
    if (this.#ended) return;
    const message =
      why === 'too-slow'
        ? `watcher fell more than ${this.#options.lagChangesMax} changes behind; resume from the last id`
        : `watcher did not read for ${this.#options.drainTimeoutMs} ms; resume from the last id`;
    this.#sink.write(errorEvent('WATCH_TOO_SLOW', message));
    this.#finish(why);
  }

  #finish(why: WatcherEnd): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#drainTimer);
    this.#sink.off('drain', this.#onDrain);
    this.#sink.end();
    this.#onEnd(why);
  }
}
