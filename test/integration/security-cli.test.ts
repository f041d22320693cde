// Checks the security side of the real command line: `peerkv token create` prints a working token
// and its auth-file line, and a node given a broken auth file, secret file or certificate exits 2
// with one line on stderr that names the file but shows none of its content.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { freePort } from '../helpers/node-process.ts';
import { runPeerkv } from './node-support.ts';
import { sha256Hex, useSecretDir } from './security-support.ts';

const secretDir = useSecretDir();

function assertOneLineExit2(result: { code: number | null; stderr: string }, mentions: RegExp) {
  assert.equal(result.code, 2, result.stderr);
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, /^peerkv: /);
  assert.match(lines[0]!, mentions);
}

describe('security on the command line', () => {
  test('token create prints the token once and the auth-file entry with its SHA-256', async () => {
    const result = await runPeerkv([
      'token',
      'create',
      '--name',
      'app',
      '--permissions',
      'read,write',
      '--prefix',
      'app/',
    ]);
    assert.equal(result.code, 0, result.stderr);
    const [token, line, rest] = result.stdout.split('\n');
    assert.match(token!, /^pkv_[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(JSON.parse(line!), {
      name: 'app',
      sha256: sha256Hex(token!),
      permissions: ['read', 'write'],
      prefixes: ['app/'],
    });
    assert.equal(rest, '');
    const bad = await runPeerkv(['token', 'create', '--name', 'x', '--permissions', 'sudo']);
    assertOneLineExit2(bad, /--permissions/);
  });

  test('broken secret files and certificates exit 2 with one line, quoting nothing', async () => {
    const port = String(await freePort());
    const dataDir = path.join(secretDir(), 'data');
    const auth = path.join(secretDir(), 'auth.json');
    const hidden = 'hidden-content-0123456789abcdef';
    fs.writeFileSync(auth, `{"tokens":[{"name":"${hidden}",`);
    const shortSecret = path.join(secretDir(), 'short');
    fs.writeFileSync(shortSecret, 'tiny\n');
    const pem = path.join(secretDir(), 'bad.pem');
    fs.writeFileSync(pem, `-----BEGIN CERTIFICATE-----\n${hidden}\n-----END CERTIFICATE-----\n`);
    const node = ['node', '--port', port, '--data-dir', dataDir];
    const cases: [string[], RegExp][] = [
      [['--auth-file', auth], /--auth-file .*auth\.json is not valid JSON/],
      [['--auth-file', path.join(secretDir(), 'missing.json')], /ENOENT/],
      [['--cluster-secret-file', shortSecret], /16 to 1024 characters/],
      [['--tls-cert', pem, '--tls-key', pem], /--tls-cert/],
    ];
    for (const [flags, mentions] of cases) {
      const result = await runPeerkv([...node, ...flags]);
      assertOneLineExit2(result, mentions);
      assert.ok(!result.stderr.includes(hidden) && !result.stdout.includes(hidden));
    }
  });
});
