// Virtual time for the simulator: one event queue for the whole simulated cluster, ordered by
// (time, order of scheduling), so a run is a pure function of its seed. Each node incarnation
// gets a Runtime (src/runtime.ts) whose timers belong to it: when the node crashes its owner is
// marked dead and none of its timers fire again. After every event the real event loop is given
// one turn (a real setImmediate), so every promise chain the event started settles before the
// next event runs, in an order that does not depend on the machine.
import assert from 'node:assert/strict';
import type { Runtime, TimerHandle } from '../../src/runtime.ts';

/** A node incarnation's liveness: events of a dead owner are skipped. */
export interface Owner {
  alive: boolean;
}

interface Event {
  readonly atMs: number;
  readonly order: number;
  readonly owner: Owner | null;
  readonly run: () => void;
  cancelled: boolean;
}

const EVENTS_MAX = 50_000_000;
/** Real turns queued at once by runUntil (see there). */
const TURNS_QUEUED = 64;

export class VirtualTime {
  #nowMs = 0;
  #order = 0;
  #heap: Event[] = [];
  #ran = 0;

  get nowMs(): number {
    return this.#nowMs;
  }

  /** Events run so far (for the throughput report). */
  get eventsRun(): number {
    return this.#ran;
  }

  get pending(): number {
    return this.#heap.length;
  }

  /** Schedules `run` at now + delayMs (never in the past); returns a handle to cancel it. */
  at(delayMs: number, run: () => void, owner: Owner | null = null): Event {
    assert.ok(Number.isFinite(delayMs), 'an event needs a finite delay');
    const event: Event = {
      atMs: this.#nowMs + Math.max(0, delayMs),
      order: this.#order++,
      owner,
      run,
      cancelled: false,
    };
    this.#push(event);
    return event;
  }

  /**
   * Runs events until none is due at or before `untilMs`, or `stop()` says so. The first due
   * event runs at once; each later one in a real turn of its own (a setImmediate callback,
   * before which Node runs every microtask queued so far, and those they queue), so every
   * promise chain an event started settles before the next event runs. The turns are queued
   * TURNS_QUEUED at a time: Node runs the immediates queued before a check phase one after
   * another, with the microtasks drained between any two, without polling for I/O in between
   * (nothing in a simulation waits on real I/O or real timers); a turn left over once the run
   * ended does nothing.
   */
  runUntil(untilMs: number, stop: () => boolean = () => false): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let finished = false;
      const finish = (error?: unknown) => {
        finished = true;
        if (error === undefined) resolve();
        else reject(error);
      };
      const turn = (last: boolean) => {
        if (finished) return;
        try {
          if (stop() || !this.#runNext(untilMs)) {
            finish();
            return;
          }
        } catch (error) {
          finish(error);
          return;
        }
        if (last) queueTurns();
      };
      const queueTurns = () => {
        for (let index = 1; index <= TURNS_QUEUED; index += 1) {
          setImmediate(turn, index === TURNS_QUEUED);
        }
      };
      try {
        if (!this.#runNext(untilMs)) {
          finish();
          return;
        }
      } catch (error) {
        finish(error);
        return;
      }
      queueTurns();
    });
  }

  /** Runs the next live event due by `untilMs`; false (time moved to `untilMs`) when none is. */
  #runNext(untilMs: number): boolean {
    while (this.#heap.length > 0 && this.#heap[0]!.atMs <= untilMs) {
      const event = this.#pop()!;
      if (event.cancelled || (event.owner !== null && !event.owner.alive)) continue;
      this.#nowMs = event.atMs;
      this.#ran += 1;
      assert.ok(this.#ran < EVENTS_MAX, 'the simulation ran away');
      event.run();
      return true;
    }
    this.#nowMs = Math.max(this.#nowMs, untilMs);
    return false;
  }

  /** A Runtime whose timers belong to `owner`. */
  runtimeFor(owner: Owner): Runtime {
    const cancel = (handle: TimerHandle | undefined) => {
      if (handle !== undefined) (handle as Event).cancelled = true;
    };
    return {
      monoMs: () => this.#nowMs,
      setTimeout: (callback, delayMs) => this.at(delayMs, callback, owner),
      clearTimeout: cancel,
      setInterval: (callback, periodMs) => {
        // One handle for the whole series: cancelling it stops the next tick.
        const handle = { cancelled: false } as Event;
        const tick = () => {
          if (handle.cancelled) return;
          callback();
          this.at(periodMs, tick, owner);
        };
        this.at(periodMs, tick, owner);
        return handle;
      },
      clearInterval: cancel,
      setImmediate: (callback) => {
        this.at(0, callback, owner);
      },
      sleep: (delayMs) => new Promise((resolve) => this.at(delayMs, () => resolve(), owner)),
    };
  }

  #push(event: Event): void {
    const heap = this.#heap;
    heap.push(event);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!before(heap[index]!, heap[parent]!)) break;
      [heap[index], heap[parent]] = [heap[parent]!, heap[index]!];
      index = parent;
    }
  }

  #pop(): Event | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length === 0 || last === undefined) return top;
    heap[0] = last;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let least = index;
      if (left < heap.length && before(heap[left]!, heap[least]!)) least = left;
      if (right < heap.length && before(heap[right]!, heap[least]!)) least = right;
      if (least === index) return top;
      [heap[index], heap[least]] = [heap[least]!, heap[index]!];
      index = least;
    }
  }
}

function before(a: Event, b: Event): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.order < b.order);
}
