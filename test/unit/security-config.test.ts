// Checks that the security flags become a validated config, and that every mistake in them is a
// ConfigError with one clear line (src/cli.ts): missing paths, the secret given twice, a secret
// that is too short, client tokens in a cluster without a secret, and TLS flags that do not fit.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { parseNodeArgs } from '../../src/cli.ts';
import { ConfigError } from '../../src/errors.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peerkv-seccfg-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const base = ['--port', '9999', '--data-dir', path.join(dir, 'data')];
const peers = ['--peers', 'http://127.0.0.1:9998'];
const secret = 'a-cluster-secret-of-some-length';

function rejects(argv: readonly string[], mentions: RegExp, env: NodeJS.ProcessEnv = {}): void {
  assert.throws(
    () => parseNodeArgs([...base, ...argv], env),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.match(error.message, mentions);
      assert.ok(!error.message.includes('\n'), 'one line');
      assert.ok(!error.message.includes(secret), 'the secret is not echoed');
      return true;
    },
    argv.join(' '),
  );
}

describe('security flags', () => {
  test('with none of them, the node is open as before', () => {
    const config = parseNodeArgs(base, {});
    assert.deepEqual(config?.security, {
      authFile: null,
      clusterSecretFile: null,
      clusterSecretEnv: null,
    });
    assert.equal(config?.tls.verifyPeers, false);
  });

  test('the cluster secret from the environment is kept redacted', () => {
    const config = parseNodeArgs([...base, ...peers], { PEERKV_CLUSTER_SECRET: secret });
    assert.equal(config?.security.clusterSecretEnv?.reveal(), secret);
    assert.ok(!JSON.stringify(config).includes(secret));
  });

  test('mistakes are ConfigErrors naming the flag', () => {
    rejects(['--auth-file', ''], /--auth-file/);
    rejects(['--cluster-secret-file', 'x'], /once/, { PEERKV_CLUSTER_SECRET: secret });
    rejects([], /PEERKV_CLUSTER_SECRET.*16/, { PEERKV_CLUSTER_SECRET: 'short' });
    rejects(['--auth-file', 'auth.json', ...peers], /cluster secret/);
    rejects(['--tls-cert', 'c.pem'], /--tls-cert and --tls-key/);
    rejects(['--tls-key', 'k.pem'], /--tls-cert and --tls-key/);
    rejects(['--tls-verify-peers', '--tls-cert', 'c', '--tls-key', 'k'], /--tls-ca/);
    rejects(
      ['--tls-verify-peers', '--tls-cert', 'c', '--tls-key', 'k', '--tls-ca', 'a', ...peers],
      /https:\/\//,
    );
    rejects(['--tls-verify-peers=yes'], /no value/);
  });

  test('an auth file in a single node needs no secret; https peers are accepted', () => {
    const single = parseNodeArgs([...base, '--auth-file', 'auth.json'], {});
    assert.match(single?.security.authFile ?? '', /auth\.json$/);
    const tls = parseNodeArgs(
      [
        ...base,
        '--peers',
        'https://127.0.0.1:9998',
        '--tls-cert',
        'c',
        '--tls-key',
        'k',
        '--tls-ca',
        'a',
        '--tls-verify-peers',
      ],
      {},
    );
    assert.deepEqual(tls?.peers, ['https://127.0.0.1:9998']);
    assert.equal(tls?.tls.verifyPeers, true);
  });
});
