/**
 * Preconditions of a write: `If-Match: "<version>"` (or `*`) and
 * `If-None-Match: *` on PUT/DELETE /kv/KEY, `ifMatch` / `ifNoneMatch` on the
 * ops of POST /batch. Parsing only; the store checks them in the transaction
 * that writes. A refused write answers 412 VERSION_MISMATCH with the key's
 * current version (null when it has none).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { PeerkvError } from '../errors.ts';
import type { Condition, MutationResult } from '../store/types.ts';
import { formatVersion, parseVersion } from '../version.ts';

const QUOTED = /^"([^"]*)"$/;

/** The condition of a PUT or DELETE, from its headers; undefined when there is none. */
export function conditionFromHeaders(
  headers: IncomingHttpHeaders,
  method: 'PUT' | 'DELETE',
): Condition | undefined {
  const ifMatch = single(headers['if-match'], 'If-Match');
  const ifNoneMatch = single(headers['if-none-match'], 'If-None-Match');
  if (ifMatch !== undefined && ifNoneMatch !== undefined) {
    throw bad('give If-Match or If-None-Match, not both');
  }
  if (ifMatch !== undefined) return matchCondition(ifMatch, 'If-Match');
  if (ifNoneMatch === undefined) return undefined;
  if (ifNoneMatch.trim() !== '*') throw bad('If-None-Match supports only "*"');
  if (method === 'DELETE') throw bad('If-None-Match: * is meaningless on DELETE');
  return { kind: 'absent' };
}

/** `"<version>"`, a bare version, or `*` (the key must exist). */
export function matchCondition(text: string, what: string): Condition {
  const trimmed = text.trim();
  if (trimmed === '*') return { kind: 'exists' };
  const unquoted = QUOTED.exec(trimmed)?.[1] ?? trimmed;
  const version = parseVersion(unquoted);
  if (!version)
    throw bad(`${what} must be "*" or a version such as "0688986c81a000-3f2a9c1d7e5b4a60"`);
  return { kind: 'match', version };
}

/** The 412 for a refused write; `prefix` names the op of a batch. */
export function versionMismatch(
  key: string,
  result: MutationResult,
  details: Record<string, unknown> = {},
  prefix = '',
): PeerkvError {
  const current = result.existed ? formatVersion(result.version) : null;
  const why =
    current === null ? 'the key does not exist' : `the key's current version is ${current}`;
  return new PeerkvError('VERSION_MISMATCH', `${prefix}version mismatch: ${why}`, {
    details: { ...details, key, current },
  });
}

function single(value: string | string[] | undefined, name: string): string | undefined {
  if (Array.isArray(value)) throw bad(`${name} must be given at most once`);
  if (value?.includes(',')) throw bad(`${name} takes one version, not a list`);
  return value;
}

function bad(message: string): PeerkvError {
  return new PeerkvError('BAD_CONDITION', message);
}
