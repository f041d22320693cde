// The checks: pure functions of the recorded history and the final state. Versions are strings
// that sort in merge order, so every comparison below is a string comparison.
import type { FinalState } from './finalize.ts';
import type { History, OpRecord } from './history.ts';
import type { NodeSnapshot, StoredEntry } from './observe.ts';
import { SKEW_MS_MAX } from './schedule.ts';

/** How far apart two nodes' (or a node's and the checker's) clocks may be: the largest skew drawn. */
const CLOCK_MARGIN_MS = SKEW_MS_MAX + 5_000;

export type CheckName =
  | 'convergence'
  | 'acked-write-lost'
  | 'value-version-mismatch'
  | 'phantom-value'
  | 'phantom-delete'
  | 'delete-undone'
  | 'integrity'
  | 'read-phantom'
  | 'node-order'
  | 'duplicate-version'
  | 'bad-answer'
  | 'expiry-mismatch'
  | 'expired-listed'
  | 'early-expiry'
  | 'read-expired'
  | 'cas-double-win'
  | 'unclean-shutdown'
  | 'node-start-failed';

export interface Violation {
  readonly check: CheckName;
  readonly key?: string;
  readonly node?: number;
  readonly message: string;
  /** Schedule steps the violation is about (e.g. the acknowledged op that was lost). */
  readonly steps: readonly number[];
}

const DIFF_KEYS_MAX = 20;

/** What the checks read of a history: the chaos run's History, or the simulator's. */
export type CheckedHistory = Pick<History, 'ops' | 'incidents' | 'epochMs' | 'opsById'>;
export type CheckedFinal = Pick<FinalState, 'converged' | 'snapshots' | 'integrity'>;

/** `nowWallMs`: the wall clock the final state is judged at (the simulator's is virtual). */
export function checkRun(
  history: CheckedHistory,
  final: CheckedFinal,
  nowWallMs: number = Date.now(),
): Violation[] {
  const violations: Violation[] = [...checkConvergence(final), ...checkIntegrity(final)];
  violations.push(...checkIncidents(history), ...checkAnswers(history.ops));
  const reference = final.snapshots.find((snap) => snap !== undefined);
  if (reference !== undefined) {
    violations.push(...checkFinalState(history, reference, nowWallMs));
  }
  violations.push(...checkReads(history), ...checkNodeOrder(history.ops));
  violations.push(...checkCompareAndSwap(history.ops));
  return violations;
}

function checkConvergence(final: CheckedFinal): Violation[] {
  if (final.converged) return [];
  const snaps = final.snapshots;
  const hashes = snaps.map((snap, i) => `node${i}=${snap?.hash.slice(0, 12) ?? '(unreadable)'}`);
  const base = snaps.find((snap) => snap !== undefined);
  const keys = base === undefined ? [] : differingKeys(snaps, base);
  return [
    {
      check: 'convergence',
      message: `no convergence by the deadline: ${hashes.join(' ')}; differing keys: ${keys.join(', ') || '(none found)'}`,
      steps: [],
    },
  ];
}

function differingKeys(snaps: readonly (NodeSnapshot | undefined)[], base: NodeSnapshot): string[] {
  const keys = new Set<string>();
  for (const snap of snaps) {
    if (snap === undefined) continue;
    for (const key of new Set([...base.entries.keys(), ...snap.entries.keys()])) {
      const a = base.entries.get(key);
      const b = snap.entries.get(key);
      if (a?.version !== b?.version || a?.deleted !== b?.deleted) keys.add(key);
    }
  }
  return [...keys].slice(0, DIFF_KEYS_MAX);
}

function checkIntegrity(final: CheckedFinal): Violation[] {
  return final.integrity.flatMap((result, node) =>
    result === 'ok'
      ? []
      : [
          {
            check: 'integrity' as const,
            node,
            message: `node${node}: integrity_check: ${result}`,
            steps: [],
          },
        ],
  );
}

function checkIncidents(history: CheckedHistory): Violation[] {
  return history.incidents.map((incident) => ({
    check:
      incident.what === 'start-failed'
        ? ('node-start-failed' as const)
        : ('unclean-shutdown' as const),
    node: incident.node,
    message: `node${incident.node} at t=${(incident.atMs / 1_000).toFixed(2)}s: ${incident.detail}`,
    steps: incident.stepIndex === undefined ? [] : [incident.stepIndex],
  }));
}

function checkAnswers(ops: readonly OpRecord[]): Violation[] {
  const violations: Violation[] = [];
  const byVersion = new Map<string, OpRecord>();
  for (const op of ops) {
    if (op.badAnswer !== undefined) {
      violations.push({
        check: 'bad-answer',
        key: op.step.key,
        message: `op ${op.step.opId} ${op.step.op} got a malformed ${op.status} answer: ${op.badAnswer}`,
        steps: [op.step.index],
      });
    }
    if (op.outcome !== 'ack' || op.version === undefined) continue;
    const other = byVersion.get(op.version);
    if (other !== undefined) {
      violations.push({
        check: 'duplicate-version',
        key: op.step.key,
        message: `ops ${other.step.opId} and ${op.step.opId} were both acknowledged with version ${op.version}`,
        steps: [other.step.index, op.step.index],
      });
    }
    byVersion.set(op.version, op);
  }
  return violations;
}

/** Puts and deletes per key, in schedule order. */
function writesByKey(ops: readonly OpRecord[]): Map<string, OpRecord[]> {
  const byKey = new Map<string, OpRecord[]>();
  for (const op of ops) {
    if (op.step.op === 'get') continue;
    const list = byKey.get(op.step.key) ?? [];
    list.push(op);
    byKey.set(op.step.key, list);
  }
  return byKey;
}

function checkFinalState(
  history: CheckedHistory,
  snap: NodeSnapshot,
  nowWallMs: number,
): Violation[] {
  const byKey = writesByKey(history.ops);
  const byId = history.opsById();
  const violations: Violation[] = [];
  for (const key of new Set([...byKey.keys(), ...snap.entries.keys(), ...snap.listing.keys()])) {
    const writes = byKey.get(key) ?? [];
    const final = snap.entries.get(key);
    violations.push(...checkKey(key, writes, final, byId, nowWallMs));
    const listed = snap.listing.get(key);
    if (final?.expiresAt !== undefined) {
      violations.push(...checkExpiring(key, final, listed, nowWallMs));
      continue;
    }
    const live = final !== undefined && !final.deleted;
    const sameListing =
      listed === undefined
        ? !live
        : live && listed.version === final.version && sameJson(listed.value, final.value);
    if (!sameListing) {
      violations.push({
        check: 'phantom-value',
        key,
        message: `GET /kv lists ${listed?.version ?? 'nothing'} but the store holds ${final?.version ?? 'nothing'} (${final?.deleted ? 'tombstone' : 'value'})`,
        steps: [],
      });
    }
  }
  return violations;
}

/**
 * An expiring entry: listed only with its own version and value and not long after its expiry;
 * missing from the listing only once its expiry is near or past; swept only after it.
 */
function checkExpiring(
  key: string,
  final: StoredEntry,
  listed: { version: string; value: unknown } | undefined,
  nowMs: number,
): Violation[] {
  const expiresAt = final.expiresAt!;
  const problems: [CheckName, string][] = [];
  if (final.expired && expiresAt > nowMs + CLOCK_MARGIN_MS) {
    problems.push([
      'early-expiry',
      `swept, yet it expires at ${expiresAt}, ${expiresAt - nowMs} ms from now`,
    ]);
  }
  if (listed !== undefined) {
    if (final.expired || listed.version !== final.version || !sameJson(listed.value, final.value)) {
      problems.push([
        'phantom-value',
        `GET /kv lists ${listed.version}, the store holds ${final.version}${final.expired ? ' (swept)' : ''}`,
      ]);
    }
    if (expiresAt < nowMs - CLOCK_MARGIN_MS) {
      problems.push(['expired-listed', `listed ${nowMs - expiresAt} ms after its expiry`]);
    }
  } else if (expiresAt > nowMs + CLOCK_MARGIN_MS) {
    problems.push(['phantom-value', `not listed, yet it expires only at ${expiresAt}`]);
  }
  return problems.map(([check, message]) => ({ check, key, message, steps: [] }));
}

/**
 * Whether an absent key can be a tombstone removed past the horizon: the last acknowledged
 * write was a delete or a put whose ttl has passed by some node's clock (they may be off by the
 * margin), or a delete or ttl put of unknown outcome may have come last.
 */
function removedDeletion(
  acked: readonly OpRecord[],
  writes: readonly OpRecord[],
  nowMs: number,
): boolean {
  const ends = (op: OpRecord) =>
    op.step.op === 'delete' ||
    (op.step.op === 'put' &&
      op.step.ttlSeconds !== undefined &&
      (op.expiresAt === undefined || op.expiresAt < nowMs + CLOCK_MARGIN_MS));
  const highest = acked.reduce<OpRecord | undefined>(
    (a, b) => (a === undefined || b.version! > a.version! ? b : a),
    undefined,
  );
  if (highest !== undefined && ends(highest)) return true;
  return writes.some(
    (op) =>
      op.outcome === 'unknown' &&
      (op.step.op === 'delete' || (op.step.op === 'put' && op.step.ttlSeconds !== undefined)),
  );
}

function checkKey(
  key: string,
  writes: readonly OpRecord[],
  final: StoredEntry | undefined,
  byId: ReadonlyMap<number, OpRecord>,
  nowMs: number,
): Violation[] {
  const violations: Violation[] = [];
  const acked = writes.filter((op) => op.outcome === 'ack' && op.version !== undefined);
  const finalText =
    final === undefined ? 'nothing' : `${final.deleted ? 'tombstone' : 'value'} ${final.version}`;
  // A key no node holds any more was deleted (or expired) and its tombstone removed past the
  // horizon: what it answered is then a removed delete, if some delete or ttl put can be it.
  const removed = final === undefined && removedDeletion(acked, writes, nowMs);
  for (const op of acked) {
    if (removed) break;
    if (final === undefined || final.version < op.version!) {
      violations.push({
        check: 'acked-write-lost',
        key,
        message: `acknowledged ${op.step.op} op ${op.step.opId} (version ${op.version}) is lost: the key holds ${finalText}`,
        steps: [op.step.index],
      });
    }
  }
  const highest = acked.reduce<OpRecord | undefined>(
    (a, b) => (a === undefined || b.version! > a.version! ? b : a),
    undefined,
  );
  if (highest?.step.op === 'delete' && final !== undefined && !final.deleted) {
    const later = writes.some(
      (op) =>
        op.step.op === 'put' &&
        (op.outcome === 'unknown' || (op.outcome === 'ack' && op.version! > highest.version!)),
    );
    if (!later) {
      violations.push({
        check: 'delete-undone',
        key,
        message: `acknowledged delete op ${highest.step.opId} (version ${highest.version}) was the last write, yet the key holds ${finalText}`,
        steps: [highest.step.index],
      });
    }
  }
  if (final !== undefined) violations.push(...attribute(key, final, writes, byId));
  return violations;
}

/** The final entry must come from a client write: a value from its put, a tombstone from a delete. */
function attribute(
  key: string,
  final: StoredEntry,
  writes: readonly OpRecord[],
  byId: ReadonlyMap<number, OpRecord>,
): Violation[] {
  const sameVersion = writes.find((op) => op.outcome === 'ack' && op.version === final.version);
  const expiry = checkExpiryOf(key, final, sameVersion);
  if (expiry.length > 0) return expiry;
  if (final.expired) {
    const ttlPut = (op: OpRecord) => op.step.op === 'put' && op.step.ttlSeconds !== undefined;
    if (
      sameVersion !== undefined
        ? ttlPut(sameVersion)
        : writes.some((op) => ttlPut(op) && op.outcome === 'unknown')
    ) {
      return [];
    }
    return [
      {
        check: 'phantom-value',
        key,
        message: `a swept entry ${final.version} matches no acknowledged or unknown put with a ttl`,
        steps: sameVersion ? [sameVersion.step.index] : [],
      },
    ];
  }
  if (final.deleted) {
    if (sameVersion?.step.op === 'delete') return [];
    if (
      sameVersion === undefined &&
      writes.some((op) => op.step.op === 'delete' && op.outcome === 'unknown')
    )
      return [];
    return [
      {
        check: 'phantom-delete',
        key,
        message: `tombstone ${final.version} matches no acknowledged or unknown delete${sameVersion ? ` (it is the version of put op ${sameVersion.step.opId})` : ''}`,
        steps: sameVersion ? [sameVersion.step.index] : [],
      },
    ];
  }
  const source = sourceOf(final.value, key, byId);
  if (typeof source === 'string') {
    return [
      {
        check: 'phantom-value',
        key,
        message: `value ${brief(final.value)} at ${final.version}: ${source}`,
        steps: [],
      },
    ];
  }
  if (sameVersion !== undefined && sameVersion !== source) {
    return [
      {
        check: 'value-version-mismatch',
        key,
        message: `version ${final.version} was acknowledged to op ${sameVersion.step.opId} (${sameVersion.step.op}), but the key holds op ${source.step.opId}'s value`,
        steps: [sameVersion.step.index, source.step.index],
      },
    ];
  }
  if (source.outcome === 'ack' && source.version !== final.version) {
    return [
      {
        check: 'value-version-mismatch',
        key,
        message: `the key holds op ${source.step.opId}'s value at version ${final.version}, but that put was acknowledged with ${source.version}`,
        steps: [source.step.index],
      },
    ];
  }
  return [];
}

/** The stored expiry is the one the write was acknowledged with (none for a put without ttl). */
function checkExpiryOf(key: string, final: StoredEntry, op: OpRecord | undefined): Violation[] {
  if (op === undefined || op.step.op !== 'put') return [];
  if (op.expiresAt === final.expiresAt) return [];
  return [
    {
      check: 'expiry-mismatch',
      key,
      message: `put op ${op.step.opId} was acknowledged with expiry ${op.expiresAt ?? 'none'}, the store holds ${final.expiresAt ?? 'none'}`,
      steps: [op.step.index],
    },
  ];
}

/**
 * On one node, a key's version only grows, so of the compare-and-swaps sent to one node with
 * the same expected version at most one can succeed (across nodes both may: see the README).
 */
function checkCompareAndSwap(ops: readonly OpRecord[]): Violation[] {
  const winners = new Map<string, OpRecord>();
  const violations: Violation[] = [];
  for (const op of ops) {
    if (op.outcome !== 'ack' || op.condition === undefined || op.condition === '*') continue;
    const id = `${op.step.node}\u0000${op.step.key}\u0000${op.condition}`;
    const other = winners.get(id);
    if (other !== undefined) {
      violations.push({
        check: 'cas-double-win',
        key: op.step.key,
        node: op.step.node,
        message: `ops ${other.step.opId} and ${op.step.opId} both swapped from ${op.condition} on node${op.step.node}`,
        steps: [other.step.index, op.step.index],
      });
    } else winners.set(id, op);
  }
  return violations;
}

/** The put op a stored or read value came from, or why there is none. */
function sourceOf(
  value: unknown,
  key: string,
  byId: ReadonlyMap<number, OpRecord>,
): OpRecord | string {
  const opId = typeof value === 'object' && value !== null && 'op' in value ? value.op : undefined;
  if (typeof opId !== 'number') return 'not a value any client op wrote';
  const source = byId.get(opId);
  if (source === undefined) return `op ${opId} was never issued`;
  if (source.step.op !== 'put' || source.step.key !== key) return `op ${opId} did not put this key`;
  if (JSON.stringify(source.step.value) !== JSON.stringify(value))
    return `op ${opId} wrote a different value`;
  if (source.outcome === 'failed')
    return `op ${opId} failed (${source.status ?? source.error}), so it must have changed nothing`;
  return source;
}

function checkReads(history: CheckedHistory): Violation[] {
  const byId = history.opsById();
  const violations: Violation[] = [];
  for (const op of history.ops) {
    const read = op.read;
    if (op.step.op !== 'get' || read?.found !== true) continue;
    const source = sourceOf(read.value, op.step.key, byId);
    const readWallMs = history.epochMs + op.startMs;
    const wrong =
      typeof source === 'string'
        ? source
        : source.outcome === 'ack' && source.version !== read.version
          ? `op ${source.step.opId}'s value read at ${read.version}, acknowledged with ${source.version}`
          : read.expiresAt !== undefined && read.expiresAt < readWallMs - CLOCK_MARGIN_MS
            ? `read ${readWallMs - read.expiresAt} ms after its expiry`
            : undefined;
    if (wrong !== undefined) {
      violations.push({
        check: 'read-phantom',
        key: op.step.key,
        message: `get op ${op.step.opId} on node${op.step.node} read ${brief(read.value)}: ${wrong}`,
        steps: typeof source === 'string' ? [op.step.index] : [op.step.index, source.step.index],
      });
    }
  }
  return violations;
}

/**
 * A node's clock never runs behind a version it has seen, so on one node a write sent after an
 * earlier write to the same key was acknowledged must get a higher version (kill -9 and clock
 * skew included: the earlier write is durable on that node).
 */
function checkNodeOrder(ops: readonly OpRecord[]): Violation[] {
  const violations: Violation[] = [];
  const groups = new Map<string, OpRecord[]>();
  for (const op of ops) {
    if (op.step.op === 'get' || op.outcome !== 'ack' || op.version === undefined) continue;
    const id = `${op.step.node}\u0000${op.step.key}`;
    const group = groups.get(id) ?? [];
    group.push(op);
    groups.set(id, group);
  }
  for (const group of groups.values()) {
    const byEnd = [...group].sort((a, b) => a.endMs - b.endMs);
    const byStart = [...group].sort((a, b) => a.startMs - b.startMs);
    let best: OpRecord | undefined;
    let next = 0;
    for (const op of byStart) {
      while (next < byEnd.length && byEnd[next]!.endMs < op.startMs) {
        const done = byEnd[next]!;
        if (best === undefined || done.version! > best.version!) best = done;
        next += 1;
      }
      if (best !== undefined && op.version! <= best.version!) {
        violations.push({
          check: 'node-order',
          key: op.step.key,
          node: op.step.node,
          message: `op ${op.step.opId} (${op.version}) was sent to node${op.step.node} after op ${best.step.opId} (${best.version}) was acknowledged there, yet orders before it`,
          steps: [best.step.index, op.step.index],
        });
      }
    }
  }
  return violations;
}

function brief(value: unknown): string {
  const text = JSON.stringify(value) ?? 'undefined';
  return text.length > 80 ? `${text.slice(0, 80)}...` : text;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
