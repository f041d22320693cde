// Throws hostile Authorization headers at a real node with client tokens and a cluster secret:
// missing, empty, malformed, oversized, repeated, wrong scheme, control bytes, and seeded random
// ones, on a client write route and on the peer route. Every answer must be a JSON 401 (or a 400
// / 431 for what HTTP itself refuses), the node must not crash or log an error, nothing may be
// applied, and the valid credentials must still work afterwards.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { getJson } from '../helpers/http.ts';
import { useOneNode } from '../helpers/node-process.ts';
import {
  answerProblem,
  buildRequest,
  errorLogLines,
  exchange,
  Rng,
  seedFrom,
} from './hostile-support.ts';
import { bearer, useSecretDir, writeAuthFile, writeSecretFile } from './security-support.ts';

const secretDir = useSecretDir();
const authFile = path.join(secretDir(), 'auth.json');
const secretFile = path.join(secretDir(), 'secret');
const tokens = writeAuthFile(authFile, [{ name: 'all', permissions: ['read', 'write', 'admin'] }]);
const token = tokens.all!;
const secret = writeSecretFile(secretFile);
const SEED = seedFrom('PEERKV_AUTH_FUZZ_SEED');
const FUZZ_CASES = 150;

const HOSTILE_HEADERS: readonly (readonly (readonly [string, string])[])[] = [
  [],
  [['Authorization', '']],
  [['Authorization', 'Bearer']],
  [['Authorization', 'Bearer ']],
  [['Authorization', `Basic ${Buffer.from(`x:${token}`).toString('base64')}`]],
  [['Authorization', `Token ${token}`]],
  [['Authorization', token]],
  [['Authorization', `Bearer ${token} extra`]],
  [['Authorization', `Bearer ${token}x`]],
  [['Authorization', `Bearer ${token.slice(0, -1)}`]],
  [['Authorization', `Bearer ${secret.slice(0, -1)}`]],
  [['Authorization', `Bearer ${'a'.repeat(1_100)}`]],
  [['Authorization', `Bearer ${'a'.repeat(15_000)}`]],
  [['Authorization', `Bearer ${'a'.repeat(70_000)}`]],
  [['Authorization', `Bearer \u00ff\u00fe${token}`]],
  [['Authorization', `Bearer ${token}\u0001`]],
  [['Authorization', `Bearer\t${token}`]],
  [
    ['Authorization', 'Bearer wrong'],
    ['Authorization', `Bearer ${token}`],
  ],
  [
    ['Authorization', `Bearer ${token}`],
    ['Authorization', 'Bearer wrong'],
  ],
];

const TARGETS = [
  { method: 'PUT', target: '/kv/hostile', body: '"x"' },
  { method: 'POST', target: '/store', body: '{"key":"hostile","value":"x"}' },
  { method: 'POST', target: '/replicate', body: '{"key":"hostile","value":"x"}' },
] as const;

describe('hostile Authorization headers', () => {
  const one = useOneNode({
    extraArgs: ['--auth-file', authFile, '--cluster-secret-file', secretFile],
  });

  async function sendAll(headerSets: typeof HOSTILE_HEADERS, label: string): Promise<void> {
    for (const [index, headers] of headerSets.entries()) {
      for (const { method, target, body } of TARGETS) {
        const request = buildRequest(method, target, {
          headers: [['Content-Type', 'application/json'], ...headers],
          body,
        });
        const answer = await exchange(one.port, request);
        const problem = answerProblem(answer, { statuses: [400, 401, 431] });
        assert.equal(problem, undefined, `${label} ${index} on ${method} ${target}: ${problem}`);
        if (answer.status === 401) {
          assert.equal((answer.json as { code: string }).code, 'UNAUTHENTICATED');
          assert.ok(!answer.text.includes(token) && !answer.text.includes(secret));
        }
      }
    }
  }

  test('fixed hostile headers are refused with 401 JSON, and nothing is applied', async () => {
    await sendAll(HOSTILE_HEADERS, 'case');
    const read = await getJson(`${one.url}/kv/hostile`, { headers: bearer(token) });
    assert.equal(read.status, 404, 'a hostile request stored something');
  });

  test(`seeded random headers are refused too (seed ${SEED}; PEERKV_AUTH_FUZZ_SEED replays)`, async () => {
    const rng = new Rng(SEED);
    const printable = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');
    const cases = Array.from({ length: FUZZ_CASES }, () => {
      const scheme = rng.pick(['Bearer ', 'bearer ', 'Basic ', '', 'Bearer  ', 'BEARER ']);
      const value = rng.chance(0.5)
        ? rng.text(rng.int(0, 200), printable)
        : rng.pick([token, secret]).slice(0, rng.int(0, 40)) + rng.text(rng.int(1, 8), printable);
      return [['Authorization', `${scheme}${value}`.trim()]] as const;
    });
    await sendAll(cases, `seed ${SEED} case`);
    assert.equal((await getJson(`${one.url}/kv/hostile`, { headers: bearer(token) })).status, 404);
  });

  test('the node is alive, logged no error, and the valid credentials still work', async () => {
    assert.ok(one.node.running, 'the node crashed');
    assert.deepEqual(errorLogLines(one.node.logPath), []);
    const lower = await exchange(
      one.port,
      buildRequest('PUT', '/kv/valid', {
        headers: [['Authorization', `bearer ${token}`]],
        body: '1',
      }),
    );
    assert.equal(lower.status, 200, 'the scheme is case-insensitive');
    const peer = await getJson(`${one.url}/sync/digest`, { headers: bearer(secret) });
    assert.equal(peer.status, 200);
  });
});
