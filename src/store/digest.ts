/**
 * The bucketed store digest. The key space is cut into BUCKETS buckets by a
 * hash of the key; each bucket's hash is the sum modulo 2^48 of the 48-bit
 * hashes of its entries (order-independent, and unlike XOR two equal terms do
 * not cancel). Buckets are grouped in GROUPS groups for a two-level exchange,
 * and the store hash is SHA-256 over all bucket sums.
 *
 * Pure code: used by the store on the main thread and by the pool workers.
 */
import * as crypto from 'node:crypto';

export const BUCKETS = 4096;
export const GROUPS = 64;
export const BUCKETS_PER_GROUP = BUCKETS / GROUPS;
const MODULUS = 2 ** 48;

/**
 * SHA-256 of a string's UTF-8 bytes, in hex. The one-shot `crypto.hash`
 * (Node 20.12 and later) makes no Hash object and no Buffer: 1.2 µs against
 * 3.5 µs for an entry's hash, and every write, merge and scrub hashes twice
 * (bench/ANALYSIS.md, "The wiped peer's rebuild").
 */
export const sha256Hex: (text: string) => string =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha256', text, 'hex')
    : (text) => crypto.createHash('sha256').update(text).digest('hex');

/** The key's bucket: the first two bytes of its SHA-256, modulo BUCKETS. */
export function bucketOf(key: string): number {
  return Number.parseInt(sha256Hex(key).slice(0, 4), 16) % BUCKETS;
}

/**
 * A 48-bit hash of one entry's replicated content: key, version, and value or
 * tombstone. Local bookkeeping (change sequence, source) is left out, so equal
 * content hashes equally on every node. `valueJson` is null for a tombstone.
 *
 * An expiring entry hashes its expiry and the digest of its value instead of
 * the value itself, so dropping the value after expiry (the sweep keeps the
 * digest as `valueHash`) leaves the hash unchanged: nodes that swept and nodes
 * that have not yet swept agree.
 */
export function entryHash(
  key: string,
  version: string,
  valueJson: string | null,
  expiresAt: number | null = null,
  valueHash: string | null = null,
): number {
  const head = `${Buffer.byteLength(key)}:${key}\u0000${version}\u0000`;
  const tail =
    expiresAt !== null
      ? `E${expiresAt}:${valueHash ?? valueDigest(valueJson ?? 'null')}`
      : valueJson === null
        ? 'D'
        : `P${valueJson}`;
  // The first six bytes, big-endian: 12 hex digits, below 2^48.
  return Number.parseInt(sha256Hex(head + tail).slice(0, 12), 16);
}

/** The digest an expiring entry keeps of its value: 32 hex digits of SHA-256. */
export function valueDigest(valueJson: string): string {
  return sha256Hex(valueJson).slice(0, 32);
}

export const VALUE_DIGEST_PATTERN = /^[0-9a-f]{32}$/;

export function addHash(sum: number, hash: number): number {
  return (sum + hash) % MODULUS;
}

export function subtractHash(sum: number, hash: number): number {
  return (sum - hash + MODULUS) % MODULUS;
}

/** Bucket sums and entry counts, with the derived group and root hashes. */
export class BucketDigest {
  readonly sums: Float64Array;
  readonly counts: Float64Array;
  #root: string | undefined;

  constructor(sums = new Float64Array(BUCKETS), counts = new Float64Array(BUCKETS)) {
    if (sums.length !== BUCKETS || counts.length !== BUCKETS) {
      throw new RangeError(`a digest has exactly ${BUCKETS} buckets`);
    }
    this.sums = sums;
    this.counts = counts;
  }

  /** Replaces an entry's hash in its bucket; `previous` is null for a new key. */
  replace(bucket: number, previous: number | null, next: number): void {
    let sum = this.sums[bucket]!;
    if (previous !== null) sum = subtractHash(sum, previous);
    else this.counts[bucket]! += 1;
    this.sums[bucket] = addHash(sum, next);
    this.#root = undefined;
  }

  /** Takes an entry out of its bucket (a tombstone removed past the horizon). */
  remove(bucket: number, previous: number): void {
    this.sums[bucket] = subtractHash(this.sums[bucket]!, previous);
    this.counts[bucket]! -= 1;
    this.#root = undefined;
  }

  setBucket(bucket: number, sum: number, count: number): void {
    this.sums[bucket] = sum;
    this.counts[bucket] = count;
    this.#root = undefined;
  }

  /** The store hash: SHA-256 over every bucket sum, cached until a change. */
  root(): string {
    this.#root ??= crypto.createHash('sha256').update(this.#sumBytes(0, BUCKETS)).digest('hex');
    return this.#root;
  }

  /** One short hash per group of buckets, for the first level of a diff. */
  groupHashes(): string[] {
    const hashes: string[] = [];
    for (let group = 0; group < GROUPS; group += 1) {
      const bytes = this.#sumBytes(group * BUCKETS_PER_GROUP, BUCKETS_PER_GROUP);
      hashes.push(crypto.createHash('sha256').update(bytes).digest('hex').slice(0, 16));
    }
    return hashes;
  }

  entryCount(): number {
    let total = 0;
    for (const count of this.counts) total += count;
    return total;
  }

  #sumBytes(first: number, count: number): Buffer {
    const bytes = Buffer.alloc(count * 6);
    for (let index = 0; index < count; index += 1) {
      bytes.writeUIntBE(this.sums[first + index]!, index * 6, 6);
    }
    return bytes;
  }
}
