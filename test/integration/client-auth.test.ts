// Checks the client library and the CLI against real nodes that require tokens (--auth-file) and
// share a cluster secret: no token is a typed 401 that is not retried, a read-only token gets a
// typed 403 on a write, a full token reads, writes and sees the whole cluster through
// /cluster/nodes (which the nodes build by calling each other with the secret), and the CLI takes
// the token from --token or PEERKV_TOKEN.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { createClient, type PeerkvClient, PeerkvResponseError } from '../../src/client/index.ts';
import { type Cluster, useCluster, waitFor } from '../helpers/node-process.ts';
import { oneLineError, runBin } from './cli-client-support.ts';
import { useSecretDir, writeAuthFile, writeSecretFile } from './security-support.ts';

const secretDir = useSecretDir();
const authFile = path.join(secretDir(), 'auth.json');
const secretFile = path.join(secretDir(), 'secret');
writeSecretFile(secretFile);
const tokens = writeAuthFile(authFile, [
  { name: 'reader', permissions: ['read'] },
  { name: 'all', permissions: ['read', 'write', 'admin'] },
]);
const CONVERGE_TIMEOUT_MS = 15_000;

let cluster: Cluster;
useCluster(
  { nodes: 2, extraArgs: ['--auth-file', authFile, '--cluster-secret-file', secretFile] },
  (started) => {
    cluster = started;
  },
);
const clients: PeerkvClient[] = [];
after(() => Promise.all(clients.map((client) => client.close())));

function client(token?: string): PeerkvClient {
  const made = createClient({ nodes: cluster.urls, token, backoffMsMin: 10, timeoutMs: 5_000 });
  clients.push(made);
  return made;
}

async function refusal(promise: Promise<unknown>): Promise<PeerkvResponseError> {
  const error = await promise.then(
    () => assert.fail('expected a refusal'),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof PeerkvResponseError, String(error));
  return error;
}

describe('library', () => {
  test('no token: a typed 401, final (not tried on the other node)', async () => {
    const error = await refusal(client().get('k'));
    assert.equal(error.status, 401);
    assert.equal(error.code, 'UNAUTHENTICATED');
    assert.deepEqual(error.attempts, []);
  });

  test('a read-only token reads but gets a typed 403 on a write', async () => {
    const reader = client(tokens.reader);
    assert.equal(await reader.get('nothing-here'), undefined);
    const error = await refusal(reader.put('k', 'v'));
    assert.equal(error.status, 403);
    assert.equal(error.code, 'FORBIDDEN');
  });

  test('a full token writes, reads, and sees both nodes in the overview', async () => {
    const kv = client(tokens.all);
    const put = await kv.put('auth/a', { ok: true });
    assert.equal((await kv.get('auth/a'))?.version, put.version);
    const overview = await waitFor(
      async () => {
        const seen = await kv.overview();
        return seen.healthy && seen.nodes.every((node) => node.error === null) && seen;
      },
      { timeoutMs: CONVERGE_TIMEOUT_MS, message: 'a healthy overview with the token' },
    );
    assert.equal(overview.nodes.length, 2);
    assert.ok(overview.nodes.every((node) => node.entries === 1));
  });
});

describe('CLI', () => {
  test('--token and PEERKV_TOKEN are sent; without one the CLI says 401 in one line', async () => {
    const node = ['--node', cluster.urls[0]!];
    const put = await runBin(['put', 'auth/cli', '"x"', '--token', tokens.all!, ...node]);
    assert.equal(put.code, 0, put.stderr);
    const got = await runBin(['get', 'auth/cli', ...node], {
      env: { PEERKV_TOKEN: tokens.reader! },
    });
    assert.deepEqual([got.code, got.stdout], [0, 'x\n']);
    const refused = await runBin(['get', 'auth/cli', ...node]);
    assert.equal(refused.code, 1);
    assert.match(oneLineError(refused), /UNAUTHENTICATED, HTTP 401/);
    assert.doesNotMatch(refused.stderr + put.stdout + got.stdout, /pkv_/, 'no token printed');
  });
});
