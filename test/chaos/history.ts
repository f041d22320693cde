// What happened during a chaos run: every client operation with its outcome, every fault with
// when it ran, and the lifecycle marks the checker and the summary need. Times are ms since the
// run's start (performance.now() based); `epochMs` maps them to node log timestamps.
import type { FaultStep, OpStep } from './schedule.ts';

/** ack: 2xx with an answer; failed: a definite refusal (4xx/5xx, or connection refused before
 * anything was sent); unknown: no answer (timeout, reset) — the write may or may not have happened. */
export type Outcome = 'ack' | 'failed' | 'unknown';

export interface ReadResult {
  readonly found: boolean;
  readonly value?: unknown;
  readonly version?: string;
  readonly expiresAt?: number;
}

export interface OpRecord {
  readonly step: OpStep;
  /** Which start of the node served it (1 = first start). */
  readonly nodeRun: number;
  readonly startMs: number;
  readonly endMs: number;
  readonly outcome: Outcome;
  readonly status?: number;
  /** The version a put or delete was acknowledged with. */
  readonly version?: string;
  /** The expiry a TTL put was acknowledged with (node wall-clock ms). */
  readonly expiresAt?: number;
  /** What a compare-and-swap sent: the version it expected, or '*' (the key must not exist). */
  readonly condition?: string;
  readonly read?: ReadResult;
  /** Why the outcome is failed or unknown, or what was wrong with an answer. */
  readonly error?: string;
  /** A 2xx answer that broke the API contract (no version, bad JSON). */
  readonly badAnswer?: string;
}

export type FaultResult = 'done' | 'skipped' | 'error';

export interface FaultRecord {
  readonly step: FaultStep;
  readonly startMs: number;
  readonly endMs: number;
  readonly result: FaultResult;
  readonly detail?: string;
}

/** A node that exited other than as asked (SIGTERM not ending in code 0, or failed start). */
export interface NodeIncident {
  readonly node: number;
  readonly atMs: number;
  readonly what: 'unclean-shutdown' | 'start-failed';
  readonly detail: string;
  /** The schedule step that caused it, when one did. */
  readonly stepIndex?: number;
}

const RECORDS_MAX = 5_000_000;

export class History {
  readonly epochMs = Date.now();
  readonly #t0 = performance.now();
  readonly ops: OpRecord[] = [];
  readonly faults: FaultRecord[] = [];
  readonly incidents: NodeIncident[] = [];
  /** Largest delay between a step's planned time and its dispatch. */
  dispatchLagMsMax = 0;
  /** SIGTERM shutdowns, and the slowest (signal to exit). */
  shutdownsGraceful = 0;
  shutdownMsMax = 0;

  nowMs(): number {
    return performance.now() - this.#t0;
  }

  addOp(record: OpRecord): void {
    if (this.ops.length >= RECORDS_MAX) throw new Error(`more than ${RECORDS_MAX} op records`);
    this.ops.push(record);
  }

  addFault(record: FaultRecord): void {
    if (this.faults.length >= RECORDS_MAX) throw new Error(`more than ${RECORDS_MAX} faults`);
    this.faults.push(record);
  }

  addIncident(incident: NodeIncident): void {
    this.incidents.push(incident);
  }

  noteShutdown(durationMs: number): void {
    this.shutdownsGraceful += 1;
    if (durationMs > this.shutdownMsMax) this.shutdownMsMax = durationMs;
  }

  noteDispatchLag(lagMs: number): void {
    if (lagMs > this.dispatchLagMsMax) this.dispatchLagMsMax = lagMs;
  }

  /** Records by op id (op ids are dense from 0 in the schedule). */
  opsById(): Map<number, OpRecord> {
    return new Map(this.ops.map((record) => [record.step.opId, record]));
  }

  /** Every record as JSON lines, for a post-mortem (`--history`). */
  toJsonLines(): string {
    const lines = [
      ...this.faults.map((f) => ({ type: 'fault', ...f })),
      ...this.ops.map((o) => ({ type: 'op', ...o, step: { ...o.step, value: withoutPad(o) } })),
      ...this.incidents.map((i) => ({ type: 'incident', startMs: i.atMs, ...i })),
    ].sort((a, b) => a.startMs - b.startMs);
    return `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`;
  }
}

function withoutPad(record: OpRecord): unknown {
  const value = record.step.value;
  return value === undefined
    ? undefined
    : { op: value.op, w: value.w, padBytes: value.pad?.length };
}
