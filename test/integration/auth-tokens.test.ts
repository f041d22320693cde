// Checks that client tokens are enforced on every route of a real node started with --auth-file:
// each permission alone, a prefix-limited token (reads, writes and listings), no token, an unknown
// token, and that refused requests change nothing and no token shows in the log or /cluster.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { getJson, type HttpMethod, type HttpResult, httpRequest } from '../helpers/http.ts';
import { useOneNode, waitFor } from '../helpers/node-process.ts';
import {
  assertNoSecretsInLogs,
  bearer,
  newToken,
  sha256Hex,
  useSecretDir,
  writeAuthFile,
} from './security-support.ts';

const secretDir = useSecretDir();
const authFile = path.join(secretDir(), 'auth.json');
const tokens = writeAuthFile(authFile, [
  { name: 'reader', permissions: ['read'] },
  { name: 'writer', permissions: ['write'] },
  { name: 'admin', permissions: ['admin'] },
  { name: 'all', permissions: ['read', 'write', 'admin'] },
  { name: 'app', permissions: ['read', 'write'], prefixes: ['app/', 'shared/'] },
]);
const PERMISSION_OF: Record<string, string> = { reader: 'read', writer: 'write', admin: 'admin' };
const token = (name: string): string => tokens[name] ?? assert.fail(`no token ${name}`);

interface RouteCase {
  readonly name: string;
  readonly permission: 'read' | 'write' | 'admin' | 'peer';
  readonly method: HttpMethod;
  readonly path: string;
  readonly json?: unknown;
}

const ROUTES: readonly RouteCase[] = [
  { name: 'GET /store/key', permission: 'read', method: 'GET', path: '/store/key?key=k' },
  { name: 'GET /store/hash', permission: 'read', method: 'GET', path: '/store/hash' },
  { name: 'GET /kv', permission: 'read', method: 'GET', path: '/kv' },
  { name: 'GET /kv/k', permission: 'read', method: 'GET', path: '/kv/k' },
  { name: 'HEAD /kv/k', permission: 'read', method: 'HEAD', path: '/kv/k' },
  {
    name: 'POST /store',
    permission: 'write',
    method: 'POST',
    path: '/store',
    json: { key: 'k', value: 'v' },
  },
  { name: 'PUT /kv/k', permission: 'write', method: 'PUT', path: '/kv/k', json: 'v' },
  { name: 'DELETE /kv/k', permission: 'write', method: 'DELETE', path: '/kv/k' },
  { name: 'GET /cluster', permission: 'admin', method: 'GET', path: '/cluster' },
  { name: 'GET /metrics', permission: 'admin', method: 'GET', path: '/metrics' },
  { name: 'GET /cluster/nodes', permission: 'admin', method: 'GET', path: '/cluster/nodes' },
  { name: 'GET /cluster/members', permission: 'admin', method: 'GET', path: '/cluster/members' },
  {
    name: 'POST /cluster/members',
    permission: 'admin',
    method: 'POST',
    path: '/cluster/members',
    json: { url: 'ftp://bad' },
  },
  {
    name: 'DELETE /cluster/members/x',
    permission: 'admin',
    method: 'DELETE',
    path: '/cluster/members/0000000000000abc',
  },
  {
    name: 'POST /sync/members',
    permission: 'peer',
    method: 'POST',
    path: '/sync/members',
    json: { members: 'bad' },
  },
  {
    name: 'POST /replicate (seed shape)',
    permission: 'peer',
    method: 'POST',
    path: '/replicate',
    json: { key: 'k', value: 'v' },
  },
  { name: 'GET /sync/digest', permission: 'peer', method: 'GET', path: '/sync/digest' },
  {
    name: 'POST /sync/buckets',
    permission: 'peer',
    method: 'POST',
    path: '/sync/buckets',
    json: { groups: [0] },
  },
  {
    name: 'POST /sync/rows',
    permission: 'peer',
    method: 'POST',
    path: '/sync/rows',
    json: { buckets: [0] },
  },
  {
    name: 'POST /sync/fetch',
    permission: 'peer',
    method: 'POST',
    path: '/sync/fetch',
    json: { keys: ['k'] },
  },
];

function call(url: string, route: RouteCase, headers: Record<string, string> = {}) {
  return httpRequest(route.method, `${url}${route.path}`, { json: route.json, headers });
}

function assertRefused(answer: HttpResult, status: 401 | 403, what: string): void {
  assert.equal(answer.status, status, `${what}: ${answer.text}`);
  if (answer.status === 401) assert.match(answer.headers['www-authenticate'] ?? '', /^Bearer /);
  if (what.startsWith('HEAD')) return;
  const body = answer.body as { error?: unknown; code?: unknown };
  assert.equal(body.code, status === 401 ? 'UNAUTHENTICATED' : 'FORBIDDEN', what);
  assert.equal(typeof body.error, 'string', what);
}

describe('client tokens on a node with --auth-file', () => {
  const one = useOneNode({ extraArgs: ['--auth-file', authFile] });
  const all = () => bearer(token('all'));

  test('/ping, /healthz and /readyz stay open', async () => {
    const answer = await getJson(`${one.url}/ping`);
    assert.equal(answer.status, 200);
    assert.equal(answer.text, '{"message":"pong"}');
    assert.equal((await getJson(`${one.url}/healthz`)).status, 200);
    await waitFor(async () => (await getJson(`${one.url}/readyz`)).status === 200, {
      timeoutMs: 10_000,
      message: '/readyz 200 without a token',
    });
  });

  test('every other route answers 401 UNAUTHENTICATED without a token, and with an unknown one', async () => {
    for (const route of ROUTES) {
      assertRefused(await call(one.url, route), 401, `${route.name} without a token`);
      const stranger = bearer(newToken());
      assertRefused(
        await call(one.url, route, stranger),
        401,
        `${route.name} with an unknown token`,
      );
    }
    const read = await getJson(`${one.url}/kv/k`, { headers: all() });
    assert.equal(read.status, 404, 'a refused write stored nothing');
  });

  test('each permission opens exactly its routes; the others answer 403 FORBIDDEN', async () => {
    for (const name of ['reader', 'writer', 'admin']) {
      for (const route of ROUTES) {
        const answer = await call(one.url, route, bearer(token(name)));
        const what = `${route.name} as ${name}`;
        if (route.permission === 'peer') assertRefused(answer, 401, what);
        else if (PERMISSION_OF[name] === route.permission) {
          // Past the permission check: served, or refused for what it asked (a bad URL, no such member).
          assert.ok([200, 400, 404].includes(answer.status), `${what}: ${answer.text}`);
        } else assertRefused(answer, 403, what);
      }
    }
  });

  test('the cluster secret is needed for peer routes: a node without one refuses them all', async () => {
    const put = await httpRequest('PUT', `${one.url}/kv/k`, { json: 'v0', headers: all() });
    assert.equal(put.status, 200);
    for (const route of ROUTES.filter((r) => r.permission === 'peer')) {
      assertRefused(await call(one.url, route, all()), 401, `${route.name} with a client token`);
    }
    const seed = await getJson(`${one.url}/store/key?key=k`, { headers: all() });
    assert.equal(seed.status, 200);
    assert.equal(seed.text, '{"value":"v0"}', 'the seed-shape /replicate did not overwrite k');
  });

  test('a prefix-limited token reads and writes only under its prefixes', async () => {
    const app = bearer(token('app'));
    const put = (key: string, headers: Record<string, string>) =>
      httpRequest('PUT', `${one.url}/kv/${encodeURIComponent(key)}`, { json: key, headers });
    for (const key of ['app/1', 'app/2', 'shared/x', 'other/1', 'apple', 'zzz']) {
      assert.equal((await put(key, all())).status, 200);
    }
    assert.equal((await put('app/3', app)).status, 200);
    assertRefused(await put('other/2', app), 403, 'PUT outside the prefixes');
    const seed = await httpRequest('POST', `${one.url}/store`, {
      json: { key: 'other/3', value: 1 },
      headers: app,
    });
    assertRefused(seed, 403, 'POST /store outside the prefixes');
    const del = await httpRequest('DELETE', `${one.url}/kv/other%2F1`, { headers: app });
    assertRefused(del, 403, 'DELETE outside the prefixes');
    assert.equal((await getJson(`${one.url}/kv/other%2F1`, { headers: all() })).status, 200);
    for (const key of ['other/2', 'other/3']) {
      const read = await getJson(`${one.url}/kv/${encodeURIComponent(key)}`, { headers: all() });
      assert.equal(read.status, 404, `${key} was not written`);
    }
    assert.equal((await getJson(`${one.url}/kv/app%2F1`, { headers: app })).status, 200);
    assertRefused(await getJson(`${one.url}/kv/apple`, { headers: app }), 403, 'GET outside');
    const seedRead = await getJson(`${one.url}/store/key?key=zzz`, { headers: app });
    assertRefused(seedRead, 403, 'GET /store/key outside');
  });

  test('a prefix-limited listing never shows a key outside the prefixes, page by page', async () => {
    const app = bearer(token('app'));
    const list = async (query: string) => {
      const answer = await getJson(`${one.url}/kv?${query}`, { headers: app });
      assert.equal(answer.status, 200, answer.text);
      return answer.body as { items: { key: string }[]; next: string | null };
    };
    const everything = await list('limit=1000');
    assert.deepEqual(
      everything.items.map((item) => item.key),
      ['app/1', 'app/2', 'app/3', 'shared/x'],
    );
    assert.equal(everything.next, null);
    const keys: string[] = [];
    let after = '';
    for (let page = 0; page < 10; page += 1) {
      const answer = await list(`limit=1&after=${encodeURIComponent(after)}`);
      keys.push(...answer.items.map((item) => item.key));
      if (answer.next === null) break;
      after = answer.next;
    }
    assert.deepEqual(keys, ['app/1', 'app/2', 'app/3', 'shared/x']);
    assert.deepEqual(
      (await list('prefix=ap')).items.map((i) => i.key),
      ['app/1', 'app/2', 'app/3'],
    );
    assert.deepEqual(
      (await list('prefix=app%2F2')).items.map((i) => i.key),
      ['app/2'],
    );
    assert.deepEqual((await list('prefix=other%2F')).items, []);
    assert.deepEqual((await list('prefix=z')).items, []);
  });

  test('no token or token hash shows in the log or in /cluster', async () => {
    const cluster = await getJson(`${one.url}/cluster`, { headers: bearer(token('admin')) });
    assert.equal(cluster.status, 200);
    const secrets = [...Object.values(tokens), ...Object.values(tokens).map(sha256Hex)];
    for (const secret of secrets)
      assert.ok(!cluster.text.includes(secret), '/cluster shows a secret');
    assertNoSecretsInLogs([one.node.logPath], Object.values(tokens));
  });

  test('SIGHUP reloads the auth file: a new token works, a removed one is refused, a broken file is kept out', async () => {
    const before = bearer(token('reader'));
    assert.equal((await getJson(`${one.url}/store/hash`, { headers: before })).status, 200);
    const next = writeAuthFile(authFile, [{ name: 'fresh', permissions: ['read'] }]);
    const fresh = bearer(next.fresh ?? assert.fail('no fresh token'));
    one.node.kill('SIGHUP');
    await waitFor(
      async () => (await getJson(`${one.url}/store/hash`, { headers: fresh })).status === 200,
      { timeoutMs: 5_000, message: 'the new token accepted after SIGHUP' },
    );
    assertRefused(await getJson(`${one.url}/store/hash`, { headers: before }), 401, 'revoked');
    fs.writeFileSync(authFile, '{"tokens": [ broken');
    one.node.kill('SIGHUP');
    await waitFor(() => fs.readFileSync(one.node.logPath, 'utf8').includes('reload failed'), {
      timeoutMs: 5_000,
      message: 'the failed reload logged',
    });
    assert.equal((await getJson(`${one.url}/store/hash`, { headers: fresh })).status, 200);
    assert.ok(one.node.running);
  });
});
