// Shared pieces of the security tests: auth files with real tokens, a cluster secret file, the
// Authorization header, and a check that no secret appears in any node's log.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

export interface TokenSpec {
  readonly name: string;
  readonly permissions: readonly string[];
  readonly prefixes?: readonly string[];
}

/** A temp dir for secret files, removed after the file's tests. */
export function useSecretDir(): () => string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peerkv-secrets-'));
  after(() => fsp.rm(dir, { recursive: true, force: true }));
  return () => dir;
}

export function newToken(): string {
  return `pkv_${randomBytes(32).toString('base64url')}`;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Writes an auth file holding a fresh token per spec; returns the tokens by name. */
export function writeAuthFile(file: string, specs: readonly TokenSpec[]): Record<string, string> {
  const tokens: Record<string, string> = {};
  const entries = specs.map((spec) => {
    const token = newToken();
    tokens[spec.name] = token;
    return { ...spec, sha256: sha256Hex(token) };
  });
  fs.writeFileSync(file, JSON.stringify({ tokens: entries }), { mode: 0o600 });
  return tokens;
}

/** Writes a fresh random cluster secret (with a trailing newline, as `echo` would) and returns it. */
export function writeSecretFile(file: string, secret = randomBytes(24).toString('hex')): string {
  fs.writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** Asserts that none of `secrets` appears in any of the log files. */
export function assertNoSecretsInLogs(
  logPaths: readonly string[],
  secrets: readonly string[],
): void {
  for (const logPath of logPaths) {
    const text = fs.readFileSync(logPath, 'utf8');
    assert.ok(text.length > 0, `${logPath} is empty`);
    for (const secret of secrets) {
      assert.ok(!text.includes(secret), `${logPath} contains a secret`);
    }
  }
}
