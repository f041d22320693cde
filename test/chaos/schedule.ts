// The chaos schedule: a pure function of the seed and the settings. Every client operation and
// every fault is drawn up front as a step with a time offset, so a failing run replays exactly
// (what the nodes do in between is real and may vary; what the checker asks of them does not).
import assert from 'node:assert/strict';
import { createRng, type Rng } from '../helpers/fault-proxy.ts';

export type OpKind = 'put' | 'delete' | 'get';

/** The value a put writes: `op` names the client op, so every stored value is attributable. */
export interface ChaosValue {
  readonly op: number;
  readonly w: number;
  readonly pad?: string;
}

export interface OpStep {
  readonly kind: 'op';
  readonly index: number;
  readonly atMs: number;
  readonly opId: number;
  readonly op: OpKind;
  readonly key: string;
  readonly node: number;
  readonly value?: ChaosValue;
  /** A put with a TTL (seconds): the key expires, and the checks allow for it. */
  readonly ttlSeconds?: number;
  /** A compare-and-swap: read the key on the node, then put with If-Match (or If-None-Match: *). */
  readonly conditional?: boolean;
}

/** How a disturbed directed link (node `from` calling node `to`) misbehaves until the next heal. */
export type LinkMode = 'cut' | 'blackhole' | 'flaky' | 'slow';

export interface LinkFault {
  readonly from: number;
  readonly to: number;
  readonly mode: LinkMode;
  /** For 'slow': the delay per chunk. */
  readonly delayMs?: number;
}

export type PartitionName = 'isolate' | 'split' | 'one-way' | 'flaky' | 'slow';

export type Fault =
  | { readonly type: 'kill'; readonly node: number; readonly duringResync: boolean }
  | { readonly type: 'restart'; readonly node: number }
  | {
      readonly type: 'skew';
      readonly node: number;
      readonly offsetMs: number;
      readonly signal: 'SIGKILL' | 'SIGTERM';
    }
  | { readonly type: 'partition'; readonly name: PartitionName; readonly links: LinkFault[] }
  | { readonly type: 'heal' }
  /** Node `via` removes `node` from the cluster (DELETE /cluster/members), or adds it back. */
  | { readonly type: 'member-remove'; readonly node: number; readonly via: number }
  | { readonly type: 'member-add'; readonly node: number; readonly via: number };

export interface FaultStep {
  readonly kind: 'fault';
  readonly index: number;
  readonly atMs: number;
  readonly fault: Fault;
}

export type Step = OpStep | FaultStep;

export interface ScheduleSettings {
  readonly seed: number;
  readonly durationMs: number;
  readonly nodes: number;
  readonly opsPerSecond: number;
  readonly faultGapMs: number;
  /** Membership changes drawn (default true); off, tombstone removal never pauses for one. */
  readonly memberFaults?: boolean;
}

export interface Schedule {
  readonly settings: ScheduleSettings;
  /** Every step, ordered by atMs; `index` is the position here. */
  readonly steps: readonly Step[];
}

const HOT_KEYS = 5;
const COLD_KEYS = 300;
/** Keys that exercise percent-encoding and UTF-8 byte order in listings. */
const ODD_KEYS = ['sp ace', 'uni/ключ', 'slash/a/b', 'pct%25', 'emoji/😀', 'q?x=1&y'];
export const SKEW_MS_MAX = 120_000;
const KILL_BURST_OPS_MIN = 6;
const KILL_BURST_OPS_MAX = 12;
const KILL_BURST_LEAD_MS = 60;
/** No fault is drawn this close to the end; the final heal follows the schedule. */
const FAULT_TAIL_MS = 500;
const STEPS_MAX = 2_000_000;

export const ALL_KEYS: readonly string[] = [
  ...Array.from({ length: HOT_KEYS }, (_, i) => `hot/${i}`),
  ...Array.from({ length: COLD_KEYS }, (_, i) => `k/${String(i).padStart(4, '0')}`),
  ...ODD_KEYS,
];

export function generateSchedule(settings: ScheduleSettings): Schedule {
  assert.ok(settings.nodes >= 2 && settings.durationMs > 0 && settings.opsPerSecond > 0);
  const faults = generateFaults(createRng(settings.seed), settings);
  const ops = generateOps(createRng((settings.seed ^ 0x5bd1e995) >>> 0), settings, faults);
  // Drawn from a stream of their own, so a seed's other faults and ops stay what they were.
  const members = generateMemberFaults(createRng((settings.seed ^ 0x3c6ef372) >>> 0), settings);
  // Stable order: by time, faults before ops at the same instant.
  const merged = [...faults, ...members, ...ops].sort(
    (a, b) => a.atMs - b.atMs || (a.kind === b.kind ? 0 : a.kind === 'fault' ? -1 : 1),
  );
  assert.ok(merged.length <= STEPS_MAX, `schedule too long: ${merged.length} steps`);
  return { settings, steps: merged.map((step, index) => ({ ...step, index })) };
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  assert.ok(items.length > 0, 'pick from an empty list');
  return items[Math.floor(rng() * items.length)] as T;
}

function between(rng: Rng, min: number, max: number): number {
  return min + Math.floor(rng() * (max - min + 1));
}

/** Picks one of `choices` by weight; choices with weight 0 are never picked. */
function weighted<T>(rng: Rng, choices: readonly (readonly [number, T])[]): T {
  const total = choices.reduce((sum, [w]) => sum + w, 0);
  assert.ok(total > 0, 'no choice has weight');
  let r = rng() * total;
  for (const [w, value] of choices) {
    if (r < w) return value;
    r -= w;
  }
  return choices[choices.length - 1]![1];
}

/** Fisher-Yates, drawing from `rng`. */
function shuffle<T>(rng: Rng, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i -= 1) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

type Draft<T extends Step> = Omit<T, 'index'>;

interface PlanState {
  readonly down: Set<number>;
  disturbed: boolean;
}

function generateFaults(rng: Rng, s: ScheduleSettings): Draft<FaultStep>[] {
  const steps: Draft<FaultStep>[] = [];
  const state: PlanState = { down: new Set(), disturbed: false };
  const all = Array.from({ length: s.nodes }, (_, i) => i);
  let atMs = s.faultGapMs * (0.5 + rng());
  while (atMs < s.durationMs - FAULT_TAIL_MS) {
    const up = all.filter((n) => !state.down.has(n));
    const down = [...state.down];
    const action = weighted(rng, [
      [down.length > 0 ? 3 : 0, 'restart'],
      [up.length > 1 ? 2 : 0, 'kill'],
      [1, 'skew'],
      [state.disturbed ? 0 : 4, 'partition'],
      [state.disturbed ? 3 : 0, 'heal'],
    ] as const);
    const push = (fault: Fault, at = atMs): void => {
      steps.push({ kind: 'fault', atMs: at, fault });
    };
    if (action === 'restart') {
      const node = pick(rng, down);
      state.down.delete(node);
      push({ type: 'restart', node });
      if (rng() < 0.35) {
        // Kill it again while the resync it runs at start-up is likely still going.
        atMs += between(rng, 150, 1_500);
        state.down.add(node);
        push({ type: 'kill', node, duringResync: true });
      }
    } else if (action === 'kill') {
      const node = pick(rng, up);
      state.down.add(node);
      push({ type: 'kill', node, duringResync: false });
    } else if (action === 'skew') {
      // A skew restarts its node, so it never takes the last node that is up.
      const node = pick(rng, up.length > 1 ? all : all.filter((n) => !up.includes(n)));
      state.down.delete(node);
      const offsetMs = rng() < 0.2 ? 0 : (rng() < 0.5 ? -1 : 1) * between(rng, 1_000, SKEW_MS_MAX);
      push({ type: 'skew', node, offsetMs, signal: rng() < 0.5 ? 'SIGKILL' : 'SIGTERM' });
    } else if (action === 'partition') {
      state.disturbed = true;
      push(drawPartition(rng, s.nodes));
    } else {
      state.disturbed = false;
      push({ type: 'heal' });
    }
    atMs += s.faultGapMs * (0.3 + 1.4 * rng());
  }
  return steps;
}

function drawPartition(rng: Rng, nodes: number): Fault {
  const name = weighted(rng, [
    [3, 'isolate'],
    [nodes >= 3 ? 2 : 0, 'split'],
    [3, 'one-way'],
    [1, 'flaky'],
    [1, 'slow'],
  ] as const);
  const all = Array.from({ length: nodes }, (_, i) => i);
  const hard = (): LinkMode => (rng() < 0.7 ? 'cut' : 'blackhole');
  const cross = (side: ReadonlySet<number>, mode: LinkMode): LinkFault[] =>
    all.flatMap((from) =>
      all
        .filter((to) => to !== from && side.has(from) !== side.has(to))
        .map((to) => ({ from, to, mode })),
    );
  if (name === 'isolate')
    return { type: 'partition', name, links: cross(new Set([pick(rng, all)]), hard()) };
  if (name === 'split') {
    const shuffled = shuffle(rng, all);
    const sideSize = between(rng, 1, Math.floor(nodes / 2));
    return { type: 'partition', name, links: cross(new Set(shuffled.slice(0, sideSize)), hard()) };
  }
  const from = pick(rng, all);
  const to = pick(
    rng,
    all.filter((n) => n !== from),
  );
  if (name === 'one-way') return { type: 'partition', name, links: [{ from, to, mode: hard() }] };
  if (name === 'flaky') return { type: 'partition', name, links: cross(new Set([from]), 'flaky') };
  const delayMs = between(rng, 50, 400);
  return {
    type: 'partition',
    name,
    links: cross(new Set([from]), 'slow').map((l) => ({ ...l, delayMs })),
  };
}

/** Mean time between a member's removal and the next one. */
const MEMBER_CYCLE_GAP_MS = 25_000;

/**
 * Membership changes: now and then a node is removed from the cluster by
 * another, and added back a few seconds later by a third (or by the final
 * heal). While removed it still takes client writes; once back it is a new
 * peer and is resynced, so every check holds at the end.
 */
function generateMemberFaults(rng: Rng, s: ScheduleSettings): Draft<FaultStep>[] {
  const steps: Draft<FaultStep>[] = [];
  if (s.memberFaults === false) return steps;
  const all = Array.from({ length: s.nodes }, (_, i) => i);
  let atMs = MEMBER_CYCLE_GAP_MS * (0.3 + rng());
  while (atMs < s.durationMs - FAULT_TAIL_MS) {
    const node = pick(rng, all);
    const others = all.filter((n) => n !== node);
    steps.push({
      kind: 'fault',
      atMs,
      fault: { type: 'member-remove', node, via: pick(rng, others) },
    });
    const addAtMs = atMs + between(rng, 2_000, 10_000);
    if (addAtMs < s.durationMs - FAULT_TAIL_MS) {
      steps.push({
        kind: 'fault',
        atMs: addAtMs,
        fault: { type: 'member-add', node, via: pick(rng, others) },
      });
    }
    atMs = addAtMs + MEMBER_CYCLE_GAP_MS * (0.5 + rng());
  }
  return steps;
}

/** Which nodes the fault plan has down at each fault step, to aim ops at nodes meant to be up. */
function downTimeline(faults: readonly Draft<FaultStep>[]): { atMs: number; down: Set<number> }[] {
  const down = new Set<number>();
  const timeline = [{ atMs: 0, down: new Set<number>() }];
  for (const { atMs, fault } of faults) {
    if (fault.type === 'kill') down.add(fault.node);
    else if (fault.type === 'restart' || fault.type === 'skew') down.delete(fault.node);
    else continue;
    timeline.push({ atMs, down: new Set(down) });
  }
  return timeline;
}

function generateOps(
  rng: Rng,
  s: ScheduleSettings,
  faults: readonly Draft<FaultStep>[],
): Draft<OpStep>[] {
  const timeline = downTimeline(faults);
  const all = Array.from({ length: s.nodes }, (_, i) => i);
  const ops: Draft<OpStep>[] = [];
  const meanGapMs = 1_000 / s.opsPerSecond;
  let cursor = 0;
  let atMs = 0;
  for (;;) {
    atMs += -Math.log(1 - rng()) * meanGapMs;
    if (atMs >= s.durationMs) break;
    while (cursor + 1 < timeline.length && timeline[cursor + 1]!.atMs <= atMs) cursor += 1;
    const planned = timeline[cursor]!.down;
    const up = all.filter((n) => !planned.has(n));
    // Mostly nodes the plan has up; sometimes any node, so some ops meet a dead or dying one.
    const targets = up.length > 0 && rng() < 0.9 ? up : all;
    if (rng() < 0.02) {
      // A burst: one hot key written on every node at the same instant.
      const key = `hot/${Math.floor(rng() * HOT_KEYS)}`;
      for (const node of targets) ops.push(drawPut(rng, ops.length, atMs, key, node));
      continue;
    }
    const key =
      rng() < 0.3 ? `hot/${Math.floor(rng() * HOT_KEYS)}` : pick(rng, ALL_KEYS.slice(HOT_KEYS));
    const node = pick(rng, targets);
    const r = rng();
    if (r < 0.55) ops.push(drawPut(rng, ops.length, atMs, key, node));
    else
      ops.push({ kind: 'op', atMs, opId: ops.length, op: r < 0.7 ? 'delete' : 'get', key, node });
  }
  for (const step of faults) {
    if (step.fault.type === 'kill')
      ops.push(...killBurst(rng, step.atMs, step.fault.node, ops.length));
  }
  return ops.sort((a, b) => a.atMs - b.atMs);
}

/** Writes aimed at a node around the moment it is killed, so some are in flight when it dies. */
function killBurst(rng: Rng, killAtMs: number, node: number, firstOpId: number): Draft<OpStep>[] {
  const count = between(rng, KILL_BURST_OPS_MIN, KILL_BURST_OPS_MAX);
  return Array.from({ length: count }, (_, i) => {
    const atMs = Math.max(0, killAtMs - KILL_BURST_LEAD_MS + rng() * (KILL_BURST_LEAD_MS + 20));
    const key = rng() < 0.5 ? `hot/${Math.floor(rng() * HOT_KEYS)}` : pick(rng, ALL_KEYS);
    return rng() < 0.8
      ? drawPut(rng, firstOpId + i, atMs, key, node)
      : { kind: 'op', atMs, opId: firstOpId + i, op: 'delete', key, node };
  });
}

/** Some puts carry a short TTL (many expire during a run), some are compare-and-swaps. */
const TTL_PUT_SHARE = 0.15;
const CAS_PUT_SHARE = 0.15;
const TTL_SECONDS_CHOICES = [0.5, 1, 2, 4];

function drawPut(rng: Rng, opId: number, atMs: number, key: string, node: number): Draft<OpStep> {
  const w = Math.floor(rng() * 1e9);
  const value: ChaosValue =
    rng() < 0.05 ? { op: opId, w, pad: 'x'.repeat(between(rng, 1_024, 8_192)) } : { op: opId, w };
  const put: Draft<OpStep> = { kind: 'op', atMs, opId, op: 'put', key, node, value };
  const r = rng();
  if (r < TTL_PUT_SHARE) return { ...put, ttlSeconds: pick(rng, TTL_SECONDS_CHOICES) };
  if (r < TTL_PUT_SHARE + CAS_PUT_SHARE) return { ...put, conditional: true };
  return put;
}

/** put, put-ttl, put-cas, delete or get. */
export function opLabel(step: OpStep): string {
  if (step.ttlSeconds !== undefined) return 'put-ttl';
  if (step.conditional) return 'put-cas';
  return step.op;
}

/** A short label of a fault, for counts by kind and for reports. */
export function faultKind(fault: Fault): string {
  if (fault.type === 'kill') return fault.duringResync ? 'kill-during-resync' : 'kill';
  if (fault.type === 'partition') return `partition-${fault.name}`;
  return fault.type;
}

export function describeStep(step: Step): string {
  const at = `step ${step.index} (t=${(step.atMs / 1_000).toFixed(2)}s)`;
  if (step.kind === 'op')
    return `${at} op ${step.opId} ${opLabel(step)} ${JSON.stringify(step.key)} on node${step.node}`;
  const f = step.fault;
  if (f.type === 'partition') {
    const links = f.links.map(
      (l) => `${l.from}->${l.to}:${l.mode}${l.delayMs ? `(${l.delayMs}ms)` : ''}`,
    );
    return `${at} ${faultKind(f)} [${links.join(' ')}]`;
  }
  if (f.type === 'skew') return `${at} skew node${f.node} ${f.offsetMs} ms (${f.signal})`;
  if (f.type === 'heal') return `${at} heal`;
  if (f.type === 'member-remove') return `${at} member-remove node${f.node} via node${f.via}`;
  if (f.type === 'member-add') return `${at} member-add node${f.node} via node${f.via}`;
  return `${at} ${faultKind(f)} node${f.node}`;
}
