/**
 * What one request may touch. The HTTP layer builds an Access from the
 * request's credentials (src/security/authorizer.ts) and hands it to the
 * handler, which asks it about keys: `requireKey(key)` before reading or
 * writing one key, `allows(key)` to filter what it shows, `scopedList()` for
 * a listing that never shows a key outside the token's prefixes.
 */
import { PeerkvError } from '../errors.ts';

export interface Access {
  /** Who is asking: a token's name, `cluster` for the cluster secret, `anyone` when auth is off. */
  readonly principal: string;
  /** Key prefixes this request is limited to; null means every key. */
  readonly prefixes: readonly string[] | null;
  /** Whether this request may read or write `key`. */
  allows(key: string): boolean;
  /** Throws FORBIDDEN (403) unless this request may read or write `key`. */
  requireKey(key: string): void;
}

export function accessTo(principal: string, prefixes: readonly string[] | null): Access {
  const allows = (key: string): boolean =>
    prefixes === null || prefixes.some((prefix) => key.startsWith(prefix));
  return {
    principal,
    prefixes,
    allows,
    requireKey: (key) => {
      if (!allows(key))
        throw new PeerkvError('FORBIDDEN', 'key is outside the prefixes of this token');
    },
  };
}

/** Every key, for anyone: a node without client auth. */
export const openAccess: Access = accessTo('anyone', null);

/** Every key, for a peer holding the cluster secret. */
export const clusterAccess: Access = accessTo('cluster', null);

/**
 * The prefixes a listing of `prefix` must scan under this access, in UTF-8
 * byte order (the store's order), none covering another: the listing prefix
 * itself when the access is unlimited or one of its prefixes covers it, else
 * the access prefixes that lie under the listing prefix.
 */
export function listingPrefixes(access: Access, prefix: string): string[] {
  if (access.prefixes === null || access.allows(prefix)) return [prefix];
  const under = access.prefixes.filter((own) => own.startsWith(prefix));
  const sorted = [...new Set(under)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  // After sorting, a prefix covered by another comes right after one that covers it.
  const kept: string[] = [];
  for (const candidate of sorted) {
    const last = kept.at(-1);
    if (last === undefined || !candidate.startsWith(last)) kept.push(candidate);
  }
  return kept;
}

/**
 * A listing page limited to what `access` may see: the store is asked once
 * per prefix in scope (bounded by the token's prefix count), in key order.
 */
export function scopedList<T extends { readonly key: string }>(
  access: Access,
  query: { readonly prefix: string; readonly after: string; readonly limit: number },
  list: (prefix: string, after: string, limit: number) => T[],
): T[] {
  const entries: T[] = [];
  for (const prefix of listingPrefixes(access, query.prefix)) {
    const remaining = query.limit - entries.length;
    if (remaining <= 0) break;
    entries.push(...list(prefix, query.after, remaining));
  }
  return entries;
}
