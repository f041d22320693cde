// A simulated schedule: client operations and faults, drawn up front from the seed, each at a
// virtual time. Ops use the chaos checker's step shape (test/chaos/schedule.ts), so its checks
// apply unchanged: a put's value names its op, so every stored value is attributable.
// Membership changes (a node removed by another, added back later by a third) come from a
// stream of their own, so a seed's ops and other faults are the same as without them.
import type { OpStep } from '../chaos/schedule.ts';
import { chance, intBetween, pick, type Rng, stream } from './prng.ts';

export type SimFault =
  | { readonly type: 'crash'; readonly node: number; readonly downMs: number }
  | { readonly type: 'clock-jump'; readonly node: number; readonly deltaMs: number }
  | { readonly type: 'drift'; readonly node: number; readonly ppm: number }
  | { readonly type: 'isolate'; readonly node: number }
  | { readonly type: 'cut'; readonly from: number; readonly to: number }
  | { readonly type: 'split'; readonly side: readonly number[] }
  | {
      readonly type: 'flaky';
      readonly from: number;
      readonly to: number;
      readonly dropRate: number;
      readonly duplicateRate: number;
    }
  | {
      readonly type: 'slow';
      readonly from: number;
      readonly to: number;
      readonly slowMsMax: number;
    }
  | { readonly type: 'heal' }
  /** `by` removes `node` (DELETE /cluster/members/<node id>). */
  | { readonly type: 'remove'; readonly by: number; readonly node: number }
  /** `by` adds `node` back (POST /cluster/members with its URL: pinged for its node id). */
  | { readonly type: 'add'; readonly by: number; readonly node: number };

export interface SimFaultStep {
  readonly kind: 'fault';
  readonly index: number;
  readonly atMs: number;
  readonly fault: SimFault;
}

export type SimStep = OpStep | SimFaultStep;

export interface ScheduleOptions {
  readonly seed: number;
  readonly nodes: number;
  readonly durationMs: number;
  readonly opGapMsMax: number;
  readonly faultGapMsMax: number;
  /** Clock jumps are drawn from ±this; a node's clock ends at most twice this (and 60 s) off. */
  readonly clockJumpMsMax: number;
}

/** A small key space, so that writes collide: a few plain keys and two odd ones. */
export const SIM_KEYS: readonly string[] = [
  ...Array.from({ length: 8 }, (_, i) => `k${i}`),
  'uni/ключ',
  'emoji/😀',
];

/** Default of the largest clock jump (the checker allows for skews up to 125 s). */
export const CLOCK_JUMP_MS_MAX_DEFAULT = 20_000;

export function generateSchedule(options: ScheduleOptions): SimStep[] {
  const ops = drawOps(stream(options.seed, 'ops'), options);
  const faults = drawFaults(stream(options.seed, 'faults'), options);
  const members = drawMemberChanges(stream(options.seed, 'members'), options);
  // A stable sort: at equal times ops and faults stay in the order they had without members.
  const steps = [...ops, ...faults, ...members].sort((a, b) => a.atMs - b.atMs);
  return steps.map((step, index) => ({ ...step, index }));
}

function drawOps(rng: Rng, options: ScheduleOptions): SimStep[] {
  const steps: SimStep[] = [];
  let opId = 0;
  for (let atMs = intBetween(rng, 0, options.opGapMsMax); atMs < options.durationMs; ) {
    const node = intBetween(rng, 0, options.nodes - 1);
    const key = pick(rng, SIM_KEYS);
    const roll = rng();
    const base = { kind: 'op' as const, index: 0, atMs, opId, key, node };
    if (roll < 0.45) {
      steps.push({ ...base, op: 'put', value: { op: opId, w: intBetween(rng, 0, 999) } });
    } else if (roll < 0.55) {
      const ttlSeconds = intBetween(rng, 1, 20);
      steps.push({ ...base, op: 'put', value: { op: opId, w: 0 }, ttlSeconds });
    } else if (roll < 0.65) {
      steps.push({ ...base, op: 'put', value: { op: opId, w: 1 }, conditional: true });
    } else if (roll < 0.85) {
      steps.push({ ...base, op: 'delete' });
    } else steps.push({ ...base, op: 'get' });
    opId += 1;
    // Now and then a burst: several ops in the same millisecond.
    atMs += chance(rng, 0.2) ? 0 : intBetween(rng, 1, options.opGapMsMax);
  }
  return steps;
}

function drawFaults(rng: Rng, options: ScheduleOptions): SimStep[] {
  const steps: SimStep[] = [];
  const n = options.nodes;
  const other = (node: number) => (node + intBetween(rng, 1, n - 1)) % n;
  for (let atMs = intBetween(rng, 0, options.faultGapMsMax); atMs < options.durationMs; ) {
    const node = intBetween(rng, 0, n - 1);
    const roll = rng();
    let fault: SimFault;
    if (roll < 0.22) fault = { type: 'crash', node, downMs: intBetween(rng, 0, 15_000) };
    else if (roll < 0.32) {
      const deltaMs = intBetween(rng, -options.clockJumpMsMax, options.clockJumpMsMax);
      fault = { type: 'clock-jump', node, deltaMs };
    } else if (roll < 0.37) fault = { type: 'drift', node, ppm: intBetween(rng, -5_000, 5_000) };
    else if (roll < 0.47) fault = { type: 'isolate', node };
    else if (roll < 0.57) fault = { type: 'cut', from: node, to: other(node) };
    else if (roll < 0.64) {
      const side = Array.from({ length: n }, (_, i) => i).filter(() => chance(rng, 0.5));
      fault = { type: 'split', side };
    } else if (roll < 0.74) {
      fault = {
        type: 'flaky',
        from: node,
        to: other(node),
        dropRate: intBetween(rng, 5, 50) / 100,
        duplicateRate: intBetween(rng, 0, 30) / 100,
      };
    } else if (roll < 0.82) {
      fault = { type: 'slow', from: node, to: other(node), slowMsMax: intBetween(rng, 100, 4_000) };
    } else fault = { type: 'heal' };
    steps.push({ kind: 'fault', index: 0, atMs, fault });
    atMs += intBetween(rng, 1, options.faultGapMsMax);
  }
  return steps;
}

/** Episodes of a node removed by one member and, usually, added back later by a third. */
function drawMemberChanges(rng: Rng, options: ScheduleOptions): SimStep[] {
  const steps: SimStep[] = [];
  const n = options.nodes;
  if (n < 2) return steps;
  const at = (atMs: number, fault: SimFault): SimStep => ({ kind: 'fault', index: 0, atMs, fault });
  for (let atMs = intBetween(rng, 0, MEMBER_GAP_MS_MAX); atMs < options.durationMs; ) {
    const node = intBetween(rng, 0, n - 1);
    const by = (node + intBetween(rng, 1, n - 1)) % n;
    steps.push(at(atMs, { type: 'remove', by, node }));
    // A third node when there is one, else the remover.
    const thirds = Array.from({ length: n }, (_, i) => i).filter((i) => i !== node && i !== by);
    const adder = thirds.length > 0 ? pick(rng, thirds) : by;
    const addAtMs = atMs + intBetween(rng, 500, 20_000);
    if (addAtMs < options.durationMs && chance(rng, 0.8)) {
      steps.push(at(addAtMs, { type: 'add', by: adder, node }));
    }
    atMs += intBetween(rng, 1, MEMBER_GAP_MS_MAX);
  }
  return steps;
}

const MEMBER_GAP_MS_MAX = 30_000;

export function describeFault(fault: SimFault): string {
  switch (fault.type) {
    case 'crash':
      return `crash n${fault.node} (restart after ${fault.downMs} ms)`;
    case 'clock-jump':
      return `clock of n${fault.node} jumps ${fault.deltaMs > 0 ? '+' : ''}${fault.deltaMs} ms`;
    case 'drift':
      return `clock of n${fault.node} drifts ${fault.ppm} ppm`;
    case 'isolate':
      return `isolate n${fault.node}`;
    case 'cut':
      return `cut n${fault.from} -> n${fault.to}`;
    case 'split':
      return `split {${fault.side.map((i) => `n${i}`).join(',')}} from the rest`;
    case 'flaky':
      return `flaky n${fault.from} -> n${fault.to} (drop ${fault.dropRate}, duplicate ${fault.duplicateRate})`;
    case 'slow':
      return `slow n${fault.from} -> n${fault.to} (up to +${fault.slowMsMax} ms)`;
    case 'heal':
      return 'heal every link';
    case 'remove':
      return `n${fault.by} removes n${fault.node} (by node id)`;
    case 'add':
      return `n${fault.by} adds n${fault.node} back (by URL)`;
  }
}
