/**
 * The expiry sweep: at its own pace, finds entries whose expiry has passed
 * and whose value is still stored, and hands them to the writer as `expire`
 * mutations, at most `entriesMax` per round. The store drops the value but
 * keeps the row and its version (see KvStore), so the sweep can never let an
 * older value of a key come back. A full round is followed by another soon;
 * otherwise the sweep waits `intervalMs`. Clock and timers come in as
 * parameters, so the loop can be driven by a test.
 */
import type { Logger } from 'pino';
import { nodeRuntime, type Runtime, type TimerHandle } from '../runtime.ts';
import type { Version } from '../version.ts';
import type { Mutation, MutationResult } from './types.ts';

export interface SweeperDeps {
  readonly expiredKeys: (nowWallMs: number, limit: number) => { key: string; version: Version }[];
  readonly submit: (mutations: readonly Mutation[]) => Promise<MutationResult[]>;
  readonly wallMs: () => number;
  readonly intervalMs: number;
  readonly catchUpMs: number;
  readonly entriesMax: number;
  readonly log: Logger;
  /** Timers (default: Node's); the simulator passes virtual ones. */
  readonly runtime?: Runtime;
}

export class ExpirySweeper {
  readonly #deps: SweeperDeps;
  readonly #runtime: Runtime;
  #timer: TimerHandle | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #swept = 0;

  constructor(deps: SweeperDeps) {
    this.#deps = deps;
    this.#runtime = deps.runtime ?? nodeRuntime;
  }

  /** Values dropped since the start. */
  get swept(): number {
    return this.#swept;
  }

  start(): void {
    this.#schedule(this.#deps.intervalMs);
  }

  /** Stops the loop and waits for a round in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#runtime.clearTimeout(this.#timer);
    await this.#running;
  }

  /** One bounded round; returns how many values it dropped. */
  async sweepOnce(): Promise<{ found: number; swept: number }> {
    const expired = this.#deps.expiredKeys(this.#deps.wallMs(), this.#deps.entriesMax);
    if (expired.length === 0) return { found: 0, swept: 0 };
    const results = await this.#deps.submit(
      expired.map(({ key, version }) => ({ kind: 'expire', key, version })),
    );
    const swept = results.filter((result) => result.applied).length;
    this.#swept += swept;
    return { found: expired.length, swept };
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = this.#runtime.setTimeout(
      () => {
        this.#running = this.#round();
      },
      delayMs,
      true,
    );
  }

  async #round(): Promise<void> {
    let full = false;
    try {
      const { found } = await this.sweepOnce();
      full = found >= this.#deps.entriesMax;
    } catch (error) {
      // A full queue or a failing disk: the entries stay expired (they read as
      // absent anyway) and the next round tries again.
      if (!this.#stopped) this.#deps.log.warn({ err: error }, 'expiry sweep round failed');
    }
    this.#schedule(full ? this.#deps.catchUpMs : this.#deps.intervalMs);
  }
}
