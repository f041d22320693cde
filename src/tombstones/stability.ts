/**
 * When a tombstone may go: the arithmetic of the tombstone horizon.
 *
 * Every node pushes its own writes to every peer over a cursor (src/replication/
 * peer-sender.ts). From a peer's cursor a node knows a timestamp below which
 * every write it ever made was acknowledged by that peer (the lowest of its own
 * unacknowledged changes, or a persisted floor below all its later versions).
 * Each node announces these timestamps, one per target, in its ping answer:
 * its *acknowledgement report*. From all members' reports a node computes
 *
 *   complete(M) = min over members O of report(O)[M]
 *
 * (M holds every write any member made before it), and the *stable time*
 *
 *   stable = min over members M of complete(M)
 *
 * (every member holds every write older than it, or a newer version of the
 * key). A member without a report, or a report without a member, counts 0, so
 * a node down, cut off, new or not yet identified holds the stable time back:
 * where the cluster cannot prove removal safe, nothing is removed.
 *
 * The horizon is `stable`, at most `grace` behind the wall clock, rounded down
 * to a step so that nodes computing it a moment apart reach the same value; it
 * only rises. A node may also take a peer's horizon once it is complete below
 * it itself (the peer proved it stable). Which rows go depends on the horizon
 * alone, so nodes at one horizon hold the same rows and hash alike.
 */
import { LOGICAL_PER_MS } from '../clock.ts';

/** What a node announces: its horizon and, per target node id, the timestamp it acknowledged us below. */
export interface AckReport {
  readonly horizon: number;
  readonly acked: ReadonlyMap<string, number>;
  /**
   * Per removed member (`id@version` of its removal), the members this node
   * brought level with a whole resync since it knew of the removal
   * (src/tombstones/removed-members.ts).
   */
  readonly covered?: ReadonlyMap<string, ReadonlySet<string>>;
}

/** The timestamp below which `target` holds every member's writes (0: not known). */
export function completeBelow(
  target: string,
  members: readonly string[],
  reports: ReadonlyMap<string, AckReport>,
): number {
  let lowest = Number.POSITIVE_INFINITY;
  for (const origin of members) {
    lowest = Math.min(lowest, reports.get(origin)?.acked.get(target) ?? 0);
  }
  return Number.isFinite(lowest) ? lowest : 0;
}

/** The timestamp below which every member holds every member's writes. */
export function stableBelow(
  members: readonly string[],
  reports: ReadonlyMap<string, AckReport>,
): number {
  let lowest = Number.POSITIVE_INFINITY;
  for (const target of members) lowest = Math.min(lowest, completeBelow(target, members, reports));
  return Number.isFinite(lowest) ? lowest : 0;
}

/** The step the horizon moves by: a tenth of the grace, between a second and an hour. */
export function horizonStepMs(graceMs: number): number {
  return Math.max(1_000, Math.min(3_600_000, Math.floor(graceMs / 10)));
}

/**
 * The horizon a node may move to: the stable time, no later than `grace`
 * before now, rounded down to the step; or a peer's horizon it is complete
 * below itself; never lower than `current`.
 */
export function nextHorizon(input: {
  readonly current: number;
  readonly self: string;
  readonly members: readonly string[];
  readonly reports: ReadonlyMap<string, AckReport>;
  readonly wallMs: number;
  readonly graceMs: number;
}): number {
  const { current, self, members, reports, wallMs, graceMs } = input;
  const stepTs = horizonStepMs(graceMs) * LOGICAL_PER_MS;
  const graceTs = Math.floor(wallMs - graceMs) * LOGICAL_PER_MS;
  const bound = Math.min(stableBelow(members, reports), graceTs);
  let next = bound > 0 ? Math.floor(bound / stepTs) * stepTs : 0;
  const ownCompleteness = completeBelow(self, members, reports);
  for (const origin of members) {
    const theirs = reports.get(origin)?.horizon ?? 0;
    if (theirs <= ownCompleteness) next = Math.max(next, theirs);
  }
  return Math.max(current, next);
}

const HEADER_ENTRIES_MAX = 1_000;
const NODE_ID = /^[0-9a-f]{16}$/;

/** The `X-Peerkv-Acked` header: `id=timestamp` pairs, comma-separated. */
export function formatAcked(acked: ReadonlyMap<string, number>): string {
  return [...acked].map(([id, ts]) => `${id}=${ts}`).join(',');
}

/** Removals reported at most in `X-Peerkv-Covered`, and members per removal. */
const COVERED_REMOVALS_MAX = 32;
const COVERED_MEMBERS_MAX = 256;
const REMOVAL_KEY = /^[0-9a-f]{16}@[0-9a-f]{14}-[0-9a-f]{16}$/;

/** The `X-Peerkv-Covered` header: `id@version=member.member`, comma-separated. */
export function formatCovered(covered: ReadonlyMap<string, ReadonlySet<string>>): string {
  return [...covered]
    .slice(0, COVERED_REMOVALS_MAX)
    .map(([removal, ids]) => `${removal}=${[...ids].slice(0, COVERED_MEMBERS_MAX).join('.')}`)
    .join(',');
}

/** Parses `X-Peerkv-Covered`; an absent or malformed header reports nothing covered. */
export function parseCovered(text: unknown): Map<string, Set<string>> {
  const covered = new Map<string, Set<string>>();
  if (typeof text !== 'string' || text === '') return covered;
  const parts = text.split(',');
  if (parts.length > COVERED_REMOVALS_MAX) return new Map();
  for (const part of parts) {
    const [removal, list] = part.split('=');
    if (removal === undefined || list === undefined || !REMOVAL_KEY.test(removal)) return new Map();
    const ids = list === '' ? [] : list.split('.');
    if (ids.length > COVERED_MEMBERS_MAX || !ids.every((id) => NODE_ID.test(id))) return new Map();
    covered.set(removal, new Set(ids));
  }
  return covered;
}

/** Parses a ping's horizon and acknowledgement headers; null when absent or malformed. */
export function parseAckReport(
  horizon: unknown,
  acked: unknown,
  covered?: unknown,
): AckReport | null {
  if (typeof horizon !== 'string' || typeof acked !== 'string') return null;
  const h = Number(horizon);
  if (!Number.isSafeInteger(h) || h < 0) return null;
  const map = new Map<string, number>();
  const pairs = acked === '' ? [] : acked.split(',');
  if (pairs.length > HEADER_ENTRIES_MAX) return null;
  for (const pair of pairs) {
    const [id, ts] = pair.split('=');
    const value = Number(ts);
    if (!id || !NODE_ID.test(id) || !Number.isSafeInteger(value) || value < 0) return null;
    map.set(id, value);
  }
  return { horizon: h, acked: map, covered: parseCovered(covered) };
}
