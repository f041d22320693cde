/**
 * Shapes of the resync messages, and strict parsers for them: a peer's
 * answer or request is untrusted input like any other.
 */
import { PeerkvError } from '../errors.ts';
import { validateReplicate } from '../http/validate.ts';
import { BUCKETS, BUCKETS_PER_GROUP, GROUPS } from '../store/digest.ts';
import type { Entry } from '../store/types.ts';
import { NODE_ID_PATTERN, parseVersion, type Version } from '../version.ts';

export interface BucketCursor {
  readonly bucket: number;
  readonly key: string;
}

export interface DigestAnswer {
  readonly nodeId: string;
  readonly root: string;
  readonly groups: readonly string[];
  /** Changes the answering node has not yet had acknowledged by the asker. */
  readonly backlog: number;
  /** Whether the answering node is itself running a resync (then the asker may yield). */
  readonly resyncing: boolean;
  /**
   * Entries the answering node's resyncs have moved since it started (undefined from a
   * version that does not say): while it grows, the busy node is getting on.
   */
  readonly resyncMoved: number | undefined;
}

function bad(message: string): PeerkvError {
  return new PeerkvError('BAD_REQUEST', message);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function parseDigest(value: unknown): DigestAnswer {
  if (!isObject(value)) throw bad('digest answer is not an object');
  const { nodeId, root, groups, backlog, resyncing, resyncMoved } = value;
  if (typeof nodeId !== 'string' || !NODE_ID_PATTERN.test(nodeId)) throw bad('digest: bad nodeId');
  if (typeof root !== 'string' || !/^[0-9a-f]{64}$/.test(root)) throw bad('digest: bad root');
  if (
    !Array.isArray(groups) ||
    groups.length !== GROUPS ||
    !groups.every((g) => typeof g === 'string')
  ) {
    throw bad('digest: bad groups');
  }
  if (typeof backlog !== 'number' || !Number.isSafeInteger(backlog) || backlog < 0) {
    throw bad('digest: bad backlog');
  }
  if (resyncing !== undefined && typeof resyncing !== 'boolean') throw bad('digest: bad resyncing');
  if (
    resyncMoved !== undefined &&
    (typeof resyncMoved !== 'number' || !Number.isSafeInteger(resyncMoved) || resyncMoved < 0)
  ) {
    throw bad('digest: bad resyncMoved');
  }
  return {
    nodeId,
    root,
    groups: groups as string[],
    backlog,
    resyncing: resyncing === true,
    resyncMoved,
  };
}

/** Parses a group list (request of POST /sync/buckets). */
export function parseGroups(value: unknown): number[] {
  if (!isObject(value) || !Array.isArray(value.groups)) throw bad('groups must be an array');
  const groups = value.groups;
  if (groups.length > GROUPS || !groups.every((g) => Number.isInteger(g) && g >= 0 && g < GROUPS)) {
    throw bad(`groups must be distinct integers from 0 to ${GROUPS - 1}`);
  }
  return [...new Set(groups as number[])];
}

/** Parses `{"buckets": [[bucket, sum, count], ...]}` covering exactly `groups`. */
export function parseBucketSums(
  value: unknown,
  groups: number[],
): Map<number, { sum: number; count: number }> {
  if (!isObject(value) || !Array.isArray(value.buckets)) throw bad('bucket sums: not an object');
  const sums = new Map<number, { sum: number; count: number }>();
  for (const item of value.buckets) {
    if (
      !Array.isArray(item) ||
      item.length !== 3 ||
      !item.every((n) => Number.isSafeInteger(n) && n >= 0)
    ) {
      throw bad('bucket sums: malformed item');
    }
    const [bucket, sum, count] = item as [number, number, number];
    if (bucket >= BUCKETS) throw bad('bucket sums: bucket out of range');
    sums.set(bucket, { sum, count });
  }
  for (const group of groups) {
    for (let b = group * BUCKETS_PER_GROUP; b < (group + 1) * BUCKETS_PER_GROUP; b += 1) {
      if (!sums.has(b)) throw bad('bucket sums: a bucket is missing');
    }
  }
  return sums;
}

export interface RowsRequest {
  readonly buckets: number[];
  readonly after: BucketCursor | null;
  readonly values: boolean;
}

export function parseRowsRequest(value: unknown): RowsRequest {
  if (!isObject(value) || !Array.isArray(value.buckets)) throw bad('buckets must be an array');
  const buckets = value.buckets;
  if (
    buckets.length > BUCKETS ||
    !buckets.every((b) => Number.isInteger(b) && b >= 0 && b < BUCKETS)
  ) {
    throw bad(`buckets must be integers from 0 to ${BUCKETS - 1}`);
  }
  return {
    buckets: [...new Set(buckets as number[])],
    after: parseCursor(value.after),
    values: value.values === true,
  };
}

function parseCursor(value: unknown): BucketCursor | null {
  if (value === null || value === undefined) return null;
  if (!isObject(value) || !Number.isInteger(value.bucket) || typeof value.key !== 'string') {
    throw bad('after must be null or {"bucket","key"}');
  }
  return { bucket: value.bucket as number, key: value.key };
}

/**
 * Parses `{"rows": [...], "next": cursor|null}`; summaries carry no value.
 * Rows whose version is further ahead than `timestampMax` are left out (and
 * counted in `aheadSkipped`) rather than failing the page: a later resync
 * takes them once our clock allows. Any other malformed row fails the page.
 */
export function parseRows(
  value: unknown,
  valueBytesMax: number,
  withValues: boolean,
  timestampMax: number,
): {
  entries: Entry[];
  rows: Record<string, unknown>[];
  next: BucketCursor | null;
  aheadSkipped: number;
} {
  if (!isObject(value) || !Array.isArray(value.rows)) throw bad('rows answer is malformed');
  const rows = value.rows.filter((row): row is Record<string, unknown> => {
    if (!isObject(row)) throw bad('rows answer: a row is not an object');
    const version = parseVersion(row.version);
    return version === undefined || version.timestamp <= timestampMax;
  });
  const entries = withValues ? rows : rows.map((row) => ({ ...row, value: null }));
  const payload = validateReplicate({ entries }, valueBytesMax, timestampMax);
  if (payload.kind !== 'batch') throw bad('rows answer is malformed');
  return {
    entries: payload.entries,
    rows,
    next: parseCursor(value.next),
    aheadSkipped: value.rows.length - rows.length,
  };
}

/** A key summary: the key's version and, from peers that send it, its digest hash. */
export interface Summary {
  readonly version: Version;
  readonly hash: number | undefined;
}

/** Parses a summaries page (`/sync/rows` with `values: false`) into key -> summary. */
export function parseSummaries(
  value: unknown,
  valueBytesMax: number,
  timestampMax: number,
): { summaries: Map<string, Summary>; next: BucketCursor | null } {
  const page = parseRows(value, valueBytesMax, false, timestampMax);
  const summaries = new Map<string, Summary>();
  for (const [index, entry] of page.entries.entries()) {
    const hash = page.rows[index]!.hash;
    if (hash !== undefined && !(Number.isSafeInteger(hash) && (hash as number) >= 0)) {
      throw bad('rows answer: bad hash');
    }
    summaries.set(entry.key, { version: entry.version, hash: hash as number | undefined });
  }
  return { summaries, next: page.next };
}

export function parseKeys(value: unknown, keysMax: number): string[] {
  if (!isObject(value) || !Array.isArray(value.keys)) throw bad('keys must be an array');
  if (value.keys.length > keysMax) throw bad(`at most ${keysMax} keys per request`);
  if (!value.keys.every((key) => typeof key === 'string')) throw bad('keys must be strings');
  return value.keys as string[];
}

/** How many of the asked keys a /sync/fetch answer covered (at least one). */
export function parseServed(value: unknown, asked: number): number {
  const served = isObject(value) ? value.served : undefined;
  if (typeof served !== 'number' || !Number.isInteger(served) || served < 1 || served > asked) {
    throw bad('fetch answer: bad served count');
  }
  return served;
}
