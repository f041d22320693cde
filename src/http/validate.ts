/**
 * Validation of what clients and peers send. Each function either returns a
 * clean value or throws a PeerkvError saying what is wrong; nothing here
 * touches the store.
 */

import { TIMESTAMP_MAX } from '../clock.ts';
import { PeerkvError } from '../errors.ts';
import { limits } from '../limits.ts';
import { VALUE_DIGEST_PATTERN } from '../store/digest.ts';
import type { Entry } from '../store/types.ts';
import { NODE_ID_PATTERN, parseVersion, type Version } from '../version.ts';

export function validateKey(key: unknown): string {
  if (typeof key !== 'string') throw new PeerkvError('BAD_KEY', 'key must be a string');
  if (key.length === 0) throw new PeerkvError('BAD_KEY', 'key must not be empty');
  if (!key.isWellFormed()) throw new PeerkvError('BAD_KEY', 'key is not valid Unicode');
  const bytes = Buffer.byteLength(key);
  if (bytes > limits.keyBytesMax) {
    throw new PeerkvError('KEY_TOO_LARGE', `key exceeds ${limits.keyBytesMax} bytes`);
  }
  return key;
}

/** Serialises a client's value to the JSON text we store; undefined is refused. */
export function valueToJson(value: unknown, valueBytesMax: number): string {
  if (value === undefined) throw new PeerkvError('BAD_VALUE', 'value is missing');
  let json: string;
  try {
    json = JSON.stringify(value);
  } catch (cause) {
    throw new PeerkvError('BAD_VALUE', 'value cannot be stored (nested too deeply)', { cause });
  }
  if (Buffer.byteLength(json) > valueBytesMax) {
    throw new PeerkvError('VALUE_TOO_LARGE', `value exceeds ${valueBytesMax} bytes`);
  }
  return json;
}

/**
 * A TTL in seconds: a positive number (fractions allowed, at least 1 ms) up to
 * `ttlSecondsMax`. From a query string it arrives as text; from JSON as a number.
 */
export function validateTtl(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const seconds = typeof value === 'string' && /^\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) {
    throw new PeerkvError('BAD_REQUEST', 'ttl must be a number of seconds');
  }
  if (seconds * 1000 < 1 || seconds > limits.ttlSecondsMax) {
    throw new PeerkvError(
      'BAD_REQUEST',
      `ttl must be from 0.001 to ${limits.ttlSecondsMax} seconds`,
    );
  }
  return seconds;
}

export function requireObject(body: unknown, what: string): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new PeerkvError('BAD_REQUEST', `${what} must be a JSON object`);
  }
  return body as Record<string, unknown>;
}

/** Decodes a key taken from a URL path segment (percent-encoded). */
export function keyFromPath(encoded: string): string {
  let key: string;
  try {
    key = decodeURIComponent(encoded);
  } catch (cause) {
    throw new PeerkvError('BAD_KEY', 'key in the path is not valid percent-encoding', { cause });
  }
  return validateKey(key);
}

export interface ListQuery {
  readonly prefix: string;
  readonly after: string;
  readonly limit: number;
}

export function validateListQuery(query: Record<string, unknown>): ListQuery {
  const prefix = optionalString(query.prefix, 'prefix');
  const after = optionalString(query.after, 'after');
  let limit: number = limits.listLimitDefault;
  if (query.limit !== undefined) {
    const text = optionalString(query.limit, 'limit');
    limit = Number(text);
    if (!/^\d+$/.test(text) || limit < 1 || limit > limits.listLimitMax) {
      throw new PeerkvError(
        'BAD_REQUEST',
        `limit must be an integer from 1 to ${limits.listLimitMax}`,
      );
    }
  }
  if (
    Buffer.byteLength(prefix) > limits.keyBytesMax ||
    Buffer.byteLength(after) > limits.keyBytesMax
  ) {
    throw new PeerkvError(
      'KEY_TOO_LARGE',
      `prefix and after are at most ${limits.keyBytesMax} bytes`,
    );
  }
  return { prefix, after, limit };
}

function optionalString(value: unknown, name: string): string {
  if (value === undefined) return '';
  if (typeof value !== 'string') {
    throw new PeerkvError('BAD_REQUEST', `${name} must be given at most once`);
  }
  if (!value.isWellFormed()) throw new PeerkvError('BAD_REQUEST', `${name} is not valid Unicode`);
  return value;
}

/**
 * Validates a whole POST /replicate body before anything is applied. Accepts
 * `{"entries":[{"key","value"|"deleted":true,"version"}], "from"}` and the
 * seed's single `{"key","value"}` (no version: the receiver stamps it).
 */
export type ReplicatePayload =
  | { readonly kind: 'batch'; readonly entries: Entry[]; readonly from: string | undefined }
  | { readonly kind: 'single'; readonly key: string; readonly valueJson: string };

export function validateReplicate(
  body: unknown,
  valueBytesMax: number,
  timestampMax: number = TIMESTAMP_MAX,
): ReplicatePayload {
  const object = requireObject(body, 'replicate body');
  if (!('entries' in object)) {
    return {
      kind: 'single',
      key: validateKey(object.key),
      valueJson: valueToJson(object.value, valueBytesMax),
    };
  }
  const { entries, from } = object;
  if (!Array.isArray(entries)) throw new PeerkvError('BAD_BATCH', 'entries must be an array');
  if (entries.length > limits.replicateEntriesMax) {
    throw new PeerkvError(
      'BATCH_TOO_LARGE',
      `a batch holds at most ${limits.replicateEntriesMax} entries`,
    );
  }
  if (from !== undefined && (typeof from !== 'string' || !NODE_ID_PATTERN.test(from))) {
    throw new PeerkvError('BAD_BATCH', 'from must be a node id (16 hex digits)');
  }
  const parsed = entries.map((entry, index) => {
    try {
      return validateEntry(entry, valueBytesMax, timestampMax);
    } catch (error) {
      const reason = error instanceof PeerkvError ? error.message : 'invalid';
      throw new PeerkvError('BAD_BATCH', `entry ${index}: ${reason}`, { cause: error });
    }
  });
  return { kind: 'batch', entries: parsed, from };
}

function validateEntry(raw: unknown, valueBytesMax: number, timestampMax: number): Entry {
  const entry = requireObject(raw, 'entry');
  const key = validateKey(entry.key);
  const version = parseVersion(entry.version);
  if (!version) throw new PeerkvError('BAD_BATCH', 'version is malformed');
  if (version.timestamp > timestampMax) {
    throw new PeerkvError('BAD_BATCH', "version is too far ahead of this node's clock");
  }
  const expiresAt = parseExpiresAt(entry.expiresAt);
  if (entry.valueHash !== undefined && entry.expired !== true) {
    throw new PeerkvError('BAD_BATCH', 'only an expired entry carries a valueHash');
  }
  if (entry.expired === true) return expiredEntry(entry, key, version, expiresAt);
  if (entry.expired !== undefined && entry.expired !== false) {
    throw new PeerkvError('BAD_BATCH', 'expired must be a boolean');
  }
  if (entry.deleted === true) {
    if (entry.value !== undefined) throw new PeerkvError('BAD_BATCH', 'a tombstone has no value');
    if (expiresAt !== undefined) throw new PeerkvError('BAD_BATCH', 'a tombstone has no expiry');
    return { key, valueJson: null, version };
  }
  if (entry.deleted !== undefined && entry.deleted !== false) {
    throw new PeerkvError('BAD_BATCH', 'deleted must be a boolean');
  }
  const valueJson = valueToJson(entry.value, valueBytesMax);
  return expiresAt === undefined
    ? { key, valueJson, version }
    : { key, valueJson, version, expiresAt };
}

/** A swept expiring entry: no value, its expiry, and the digest of the value it had. */
function expiredEntry(
  entry: Record<string, unknown>,
  key: string,
  version: Version,
  expiresAt: number | undefined,
): Entry {
  if (entry.value !== undefined || entry.deleted !== undefined) {
    throw new PeerkvError('BAD_BATCH', 'an expired entry has no value and is not a tombstone');
  }
  if (expiresAt === undefined) throw new PeerkvError('BAD_BATCH', 'an expired entry has expiresAt');
  if (typeof entry.valueHash !== 'string' || !VALUE_DIGEST_PATTERN.test(entry.valueHash)) {
    throw new PeerkvError('BAD_BATCH', 'an expired entry has a valueHash of 32 hex digits');
  }
  return { key, valueJson: null, version, expiresAt, valueHash: entry.valueHash };
}

function parseExpiresAt(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new PeerkvError('BAD_BATCH', 'expiresAt must be a positive integer (ms)');
  }
  return value;
}
