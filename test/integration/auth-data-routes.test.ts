// Checks the permissions of the data routes on a real node with --auth-file: POST /batch needs
// `write` and refuses a whole batch with one op outside a prefix-limited token's prefixes, and
// GET /watch needs `read` and shows a prefix-limited token only its own keys.
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { getJson, postJson, putJson } from '../helpers/http.ts';
import { useOneNode } from '../helpers/node-process.ts';
import { assertError } from './node-support.ts';
import { bearer, useSecretDir, writeAuthFile } from './security-support.ts';

const secretDir = useSecretDir();
const authFile = path.join(secretDir(), 'auth.json');
const tokens = writeAuthFile(authFile, [
  { name: 'reader', permissions: ['read'] },
  { name: 'all', permissions: ['read', 'write'] },
  { name: 'app', permissions: ['read', 'write'], prefixes: ['app/'] },
]);
const as = (name: string) => ({ headers: bearer(tokens[name]!) });

/** Reads a watch stream over a raw socket until `until` shows up (or 10 s pass). */
function readStream(port: number, target: string, token: string, until: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = '';
    const socket = net.connect({ port, host: '127.0.0.1' }, () => {
      socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`);
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no ${until} in: ${received.slice(0, 500)}`));
    }, 10_000);
    socket.on('data', (chunk) => {
      received += chunk.toString('utf8');
      if (received.includes(until)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(received);
      }
    });
    socket.on('error', reject);
  });
}

describe('permissions of /batch and /watch', () => {
  const one = useOneNode({ extraArgs: ['--auth-file', authFile] });

  test('a batch needs write, and one op outside the token prefixes refuses it whole', async () => {
    const ops = [{ op: 'put', key: 'app/1', value: 1 }];
    assertError(await postJson(`${one.url}/batch`, { ops }), 401, 'UNAUTHENTICATED');
    assertError(await postJson(`${one.url}/batch`, { ops }, as('reader')), 403, 'FORBIDDEN');
    const mixed = [...ops, { op: 'put', key: 'other/1', value: 2 }];
    const refused = await postJson(`${one.url}/batch`, { ops: mixed }, as('app'));
    assert.equal(refused.status, 403, refused.text);
    assert.equal((refused.body as { op: number }).op, 1);
    assert.equal(
      (await getJson(`${one.url}/kv/app%2F1`, as('all'))).status,
      404,
      'nothing applied',
    );
    assert.equal((await postJson(`${one.url}/batch`, { ops }, as('app'))).status, 200);
  });

  test('a watch needs read, and a prefix-limited token sees only its keys', async () => {
    assertError(await getJson(`${one.url}/watch`), 401, 'UNAUTHENTICATED');
    assertError(await getJson(`${one.url}/watch?prefix=other%2F`, as('app')), 403, 'FORBIDDEN');
    await putJson(`${one.url}/kv/other%2Fsecret`, 's', as('all'));
    await putJson(`${one.url}/kv/app%2F2`, 2, as('app'));
    await putJson(`${one.url}/kv/app%2F3`, 3, as('app'));
    const text = await readStream(one.port, '/watch?since=0', tokens.app!, 'app/3');
    assert.match(text, /app\/2/);
    assert.doesNotMatch(text, /other\/secret/);
  });
});
