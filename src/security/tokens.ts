/**
 * Client tokens. The auth file holds each token only as its SHA-256, with a
 * name, permissions and optional key prefixes:
 * `{"tokens":[{"name":"app","sha256":"<64 hex>","permissions":["read","write"],"prefixes":["app/"]}]}`.
 * A presented token is hashed and looked up by its hash.
 */
import { randomBytes } from 'node:crypto';
import { ConfigError } from '../errors.ts';
import { limits, securityLimits } from '../limits.ts';
import { sha256 } from './secret.ts';

export const CLIENT_PERMISSIONS = ['read', 'write', 'admin'] as const;
export type ClientPermission = (typeof CLIENT_PERMISSIONS)[number];

export interface TokenGrant {
  readonly name: string;
  readonly permissions: ReadonlySet<ClientPermission>;
  /** null: every key. */
  readonly prefixes: readonly string[] | null;
}

/** The tokens of one auth file, by the hex SHA-256 of the token. */
export class TokenTable {
  readonly #byHash: ReadonlyMap<string, TokenGrant>;

  constructor(byHash: ReadonlyMap<string, TokenGrant>) {
    this.#byHash = byHash;
  }

  get size(): number {
    return this.#byHash.size;
  }

  /**
   * The grant of a presented token. The lookup is by the token's SHA-256, so
   * how long it takes says nothing about any stored token (finding a token
   * from its hash's first bytes is as hard as breaking SHA-256).
   */
  find(token: string): TokenGrant | undefined {
    return this.#byHash.get(sha256(token).toString('hex'));
  }
}

const TOKEN_FIELDS = new Set(['name', 'sha256', 'permissions', 'prefixes']);

/** Parses an auth file's text; every mistake is a ConfigError naming the file and token. */
export function parseAuthFile(text: string, path: string): TokenTable {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text, which must not reach a log: say only what is wrong.
    throw new ConfigError(`--auth-file ${path} is not valid JSON`);
  }
  const tokens = (json as { tokens?: unknown } | null)?.tokens;
  if (typeof json !== 'object' || json === null || !Array.isArray(tokens)) {
    throw new ConfigError(`--auth-file ${path} must be {"tokens":[...]}`);
  }
  if (tokens.length > securityLimits.tokensMax) {
    throw new ConfigError(`--auth-file ${path} holds more than ${securityLimits.tokensMax} tokens`);
  }
  const byHash = new Map<string, TokenGrant>();
  tokens.forEach((raw: unknown, index) => {
    const where = `--auth-file ${path}: token ${index + 1}`;
    const { hash, grant } = parseToken(raw, where);
    if (byHash.has(hash)) throw new ConfigError(`${where} repeats the sha256 of another token`);
    byHash.set(hash, grant);
  });
  return new TokenTable(byHash);
}

function parseToken(raw: unknown, where: string): { hash: string; grant: TokenGrant } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${where} must be an object`);
  }
  const fields = raw as Record<string, unknown>;
  const unknown = Object.keys(fields).find((field) => !TOKEN_FIELDS.has(field));
  if (unknown !== undefined) throw new ConfigError(`${where} has an unknown field "${unknown}"`);
  const { name, sha256: hash, permissions, prefixes } = fields;
  if (typeof name !== 'string' || name === '' || name.length > securityLimits.tokenNameCharsMax) {
    throw new ConfigError(
      `${where}: "name" must be a string of 1 to ${securityLimits.tokenNameCharsMax} characters`,
    );
  }
  if (typeof hash !== 'string' || !/^[0-9a-fA-F]{64}$/.test(hash)) {
    throw new ConfigError(`${where} ("${name}"): "sha256" must be 64 hex digits`);
  }
  return {
    hash: hash.toLowerCase(),
    grant: {
      name,
      permissions: parsePermissions(permissions, `${where} ("${name}")`),
      prefixes: parsePrefixes(prefixes, `${where} ("${name}")`),
    },
  };
}

function parsePermissions(raw: unknown, where: string): Set<ClientPermission> {
  const valid = (item: unknown): item is ClientPermission =>
    (CLIENT_PERMISSIONS as readonly unknown[]).includes(item);
  if (!Array.isArray(raw) || raw.length === 0 || !raw.every(valid)) {
    throw new ConfigError(
      `${where}: "permissions" must be a non-empty list of ${CLIENT_PERMISSIONS.join(', ')}`,
    );
  }
  return new Set(raw);
}

function parsePrefixes(raw: unknown, where: string): string[] | null {
  if (raw === undefined) return null;
  const valid = (item: unknown): item is string =>
    typeof item === 'string' && item !== '' && Buffer.byteLength(item) <= limits.keyBytesMax;
  if (
    !Array.isArray(raw) ||
    raw.length === 0 ||
    raw.length > securityLimits.prefixesPerTokenMax ||
    !raw.every(valid)
  ) {
    throw new ConfigError(
      `${where}: "prefixes" must be a list of 1 to ${securityLimits.prefixesPerTokenMax} non-empty strings (leave it out for every key)`,
    );
  }
  return [...new Set(raw)];
}

/** A new random token: `pkv_` and 43 base64url characters (256 bits). */
export function createToken(): string {
  return `pkv_${randomBytes(securityLimits.tokenRandomBytes).toString('base64url')}`;
}

/** The auth-file entry for `token`. */
export function tokenEntry(
  token: string,
  name: string,
  permissions: readonly ClientPermission[],
  prefixes: readonly string[],
): Record<string, unknown> {
  const entry: Record<string, unknown> = {
    name,
    sha256: sha256(token).toString('hex'),
    permissions,
  };
  if (prefixes.length > 0) entry.prefixes = prefixes;
  return entry;
}
