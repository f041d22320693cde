/**
 * Reads the secrets a node runs with: the cluster secret (a file, or the
 * PEERKV_CLUSTER_SECRET environment variable) and the client tokens (the auth
 * file). Run at start-up and again on SIGHUP; every mistake is a ConfigError.
 */
import { readFileSync, statSync } from 'node:fs';
import { ConfigError } from '../errors.ts';
import { securityLimits } from '../limits.ts';
import { Secret } from './secret.ts';
import { parseAuthFile, type TokenTable } from './tokens.ts';

/** Where the secrets come from (paths and the environment's secret, never a flag's value). */
export interface SecuritySources {
  readonly authFile: string | null;
  readonly clusterSecretFile: string | null;
  /** PEERKV_CLUSTER_SECRET, read once at start-up. */
  readonly clusterSecretEnv: Secret | null;
}

/** The secrets in force. */
export interface SecurityState {
  /** null: client routes are open to anyone. */
  readonly tokens: TokenTable | null;
  /** null: no cluster secret (peer routes open when tokens are null too, else closed). */
  readonly clusterSecret: Secret | null;
}

export const NO_SECURITY_SOURCES: SecuritySources = {
  authFile: null,
  clusterSecretFile: null,
  clusterSecretEnv: null,
};

export function loadSecurity(sources: SecuritySources): SecurityState {
  const fromFile =
    sources.clusterSecretFile === null
      ? null
      : parseClusterSecret(
          readBounded(
            sources.clusterSecretFile,
            '--cluster-secret-file',
            securityLimits.secretFileBytesMax,
          ),
          `--cluster-secret-file ${sources.clusterSecretFile}`,
        );
  const tokens =
    sources.authFile === null
      ? null
      : parseAuthFile(
          readBounded(sources.authFile, '--auth-file', securityLimits.authFileBytesMax),
          sources.authFile,
        );
  return { tokens, clusterSecret: fromFile ?? sources.clusterSecretEnv };
}

/** A secret's text: one line of printable ASCII (it travels in a header), trailing newline allowed. */
export function parseClusterSecret(text: string, where: string): Secret {
  const value = text.replace(/\r?\n$/, '');
  if (!/^[\x21-\x7e]*$/.test(value)) {
    throw new ConfigError(
      `${where}: the cluster secret must be one line of printable ASCII without spaces`,
    );
  }
  const { clusterSecretCharsMin: min, clusterSecretCharsMax: max } = securityLimits;
  if (value.length < min || value.length > max) {
    throw new ConfigError(`${where}: the cluster secret must be ${min} to ${max} characters long`);
  }
  return new Secret(value);
}

function readBounded(path: string, flag: string, bytesMax: number): string {
  try {
    if (statSync(path).size > bytesMax) {
      throw new ConfigError(`${flag} ${path} is larger than ${bytesMax} bytes`);
    }
    return readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(`${flag} ${path} cannot be read (${code})`);
  }
}
