/**
 * `peerkv token create --name app --permissions read,write [--prefix app/]...`:
 * makes a random token, prints it once (stdout, first line) and the entry to
 * add to the auth file (stdout, second line). Only the entry's SHA-256 is kept
 * anywhere; the token itself cannot be recovered later.
 */
import minimist from 'minimist';
import { ConfigError } from './errors.ts';
import { limits, securityLimits } from './limits.ts';
import {
  CLIENT_PERMISSIONS,
  type ClientPermission,
  createToken,
  tokenEntry,
} from './security/tokens.ts';

export const TOKEN_USAGE = `Usage: peerkv token create --name <name> --permissions <list> [--prefix <prefix>]...

  --name <name>          what the token is for (shown in logs when it is refused)
  --permissions <list>   comma-separated: read, write, admin
  --prefix <prefix>      limit the token to keys starting with this (repeat for more)

Prints the token on the first line (shown only this once) and, on the second,
the JSON entry to add to the "tokens" list of the --auth-file.
`;

export interface TokenRequest {
  readonly name: string;
  readonly permissions: ClientPermission[];
  readonly prefixes: string[];
}

/** Parses `token create` flags; undefined when help was asked. */
export function parseTokenArgs(argv: readonly string[]): TokenRequest | undefined {
  const [action, ...rest] = argv;
  if (action === undefined || action === '--help' || action === '-h' || action === 'help')
    return undefined;
  if (action !== 'create')
    throw new ConfigError(`unknown token command "${action}" (expected "create")`);
  const unknown: string[] = [];
  const args = minimist([...rest], {
    string: ['name', 'permissions', 'prefix'],
    boolean: ['help'],
    unknown: (arg) => {
      unknown.push(arg);
      return false;
    },
  });
  if (unknown.length > 0)
    throw new ConfigError(`unknown argument ${unknown[0]} (see peerkv token --help)`);
  if (args.help) return undefined;
  return {
    name: parseName(args.name),
    permissions: parsePermissionList(args.permissions),
    prefixes: parsePrefixList(args.prefix),
  };
}

/** The two lines `token create` prints: the token, then its auth-file entry. */
export function createTokenLines(request: TokenRequest): string {
  const token = createToken();
  const entry = tokenEntry(token, request.name, request.permissions, request.prefixes);
  return `${token}\n${JSON.stringify(entry)}\n`;
}

function parseName(raw: unknown): string {
  if (typeof raw !== 'string' || raw === '' || raw.length > securityLimits.tokenNameCharsMax) {
    throw new ConfigError(
      `--name is required: 1 to ${securityLimits.tokenNameCharsMax} characters`,
    );
  }
  return raw;
}

function parsePermissionList(raw: unknown): ClientPermission[] {
  if (typeof raw !== 'string' || raw.trim() === '') {
    throw new ConfigError(
      `--permissions is required: a comma-separated list of ${CLIENT_PERMISSIONS.join(', ')}`,
    );
  }
  const permissions = [...new Set(raw.split(',').map((part) => part.trim()))];
  const wrong = permissions.find(
    (part) => !(CLIENT_PERMISSIONS as readonly string[]).includes(part),
  );
  if (wrong !== undefined) {
    throw new ConfigError(
      `--permissions: "${wrong}" is not one of ${CLIENT_PERMISSIONS.join(', ')}`,
    );
  }
  return permissions as ClientPermission[];
}

function parsePrefixList(raw: unknown): string[] {
  if (raw === undefined) return [];
  const list = (Array.isArray(raw) ? raw : [raw]).map(String);
  if (list.length > securityLimits.prefixesPerTokenMax) {
    throw new ConfigError(`at most ${securityLimits.prefixesPerTokenMax} --prefix flags`);
  }
  for (const prefix of list) {
    if (prefix === '' || Buffer.byteLength(prefix) > limits.keyBytesMax) {
      throw new ConfigError(`--prefix must be 1 to ${limits.keyBytesMax} UTF-8 bytes`);
    }
  }
  return [...new Set(list)];
}
