// Checks that the seed's routes answer exactly as the seed's curl examples show, by driving one real
// node process (free loopback port, temp data dir) over HTTP and comparing status and body bytes.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { del, getJson, httpRequest, postJson } from '../helpers/http.ts';
import { useOneNode } from '../helpers/node-process.ts';
import {
  assertError,
  NODE_ID_PATTERN,
  readKey,
  storeHash,
  VERSION_PATTERN,
} from './node-support.ts';

const NOT_FOUND_TEXT = '{"error":"Key not found","code":"KEY_NOT_FOUND"}';

describe('the seed API of one node', () => {
  const one = useOneNode();
  let url = '';

  before(() => {
    url = one.url;
  });

  test('GET /ping answers 200 {"message":"pong"} byte for byte, with the node id header', async () => {
    const answer = await getJson(`${url}/ping`);
    assert.equal(answer.status, 200);
    assert.equal(answer.text, '{"message":"pong"}');
    assert.match(answer.headers['content-type'] ?? '', /^application\/json/);
    assert.match(answer.headers['x-peerkv-node-id'] ?? '', NODE_ID_PATTERN);
    assert.match(answer.headers['x-peerkv-time-ms'] ?? '', /^\d+$/);
  });

  test('POST /store as the seed curl sends it answers 200 JSON with the key and a version', async () => {
    // The seed's example, spaces and all.
    const answer = await httpRequest('POST', `${url}/store`, {
      rawBody: '{"key": "hello", "value": "world"}',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(answer.status, 200, answer.text);
    assert.match(answer.headers['content-type'] ?? '', /^application\/json/);
    const body = answer.body as { key: unknown; version: unknown };
    assert.equal(body.key, 'hello');
    assert.match(String(body.version), VERSION_PATTERN);
    const ping = await getJson(`${url}/ping`);
    assert.ok(String(body.version).endsWith(`-${ping.headers['x-peerkv-node-id']}`));
  });

  test('GET /store/key with a JSON body answers {"value":"world"} byte for byte', async () => {
    assert.equal((await postJson(`${url}/store`, { key: 'hello', value: 'world' })).status, 200);
    const answer = await httpRequest('GET', `${url}/store/key`, {
      rawBody: '{"key": "hello"}',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.text, '{"value":"world"}');
  });

  test('GET /store/key?key=hello answers {"value":"world"} byte for byte', async () => {
    assert.equal((await postJson(`${url}/store`, { key: 'hello', value: 'world' })).status, 200);
    const answer = await getJson(`${url}/store/key?key=hello`);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.text, '{"value":"world"}');
  });

  test('a missing key answers 404 "Key not found" by body and by query', async () => {
    const byBody = await getJson(`${url}/store/key`, { json: { key: 'never-written' } });
    assertError(byBody, 404, 'KEY_NOT_FOUND', 'by body');
    assert.equal(byBody.text, NOT_FOUND_TEXT);
    const byQuery = await readKey(url, 'never-written');
    assertError(byQuery, 404, 'KEY_NOT_FOUND', 'by query');
    assert.equal(byQuery.text, NOT_FOUND_TEXT);
  });

  test('POST /store overwrites: the last acknowledged value is the one read', async () => {
    for (const value of ['one', 'two', 'three']) {
      assert.equal((await postJson(`${url}/store`, { key: 'seed-overwrite', value })).status, 200);
    }
    assert.equal((await readKey(url, 'seed-overwrite')).text, '{"value":"three"}');
  });

  test('POST /store takes any JSON value and GET /store/key gives it back as JSON', async () => {
    const value = { name: 'Ada', langs: ['en', 'fr'], born: 1815, alive: false, note: null };
    assert.equal((await postJson(`${url}/store`, { key: 'seed-object', value })).status, 200);
    const answer = await getJson(`${url}/store/key`, { json: { key: 'seed-object' } });
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(answer.body, { value });
  });

  test('GET /store/hash is hex, stable between reads, and changes on every put and delete', async () => {
    const first = await storeHash(url);
    assert.equal(await storeHash(url), first, 'two reads without writes agree');

    assert.equal((await postJson(`${url}/store`, { key: 'seed-hash', value: 1 })).status, 200);
    const afterPut = await storeHash(url);
    assert.notEqual(afterPut, first, 'a put changes the hash');
    assert.equal(await storeHash(url), afterPut);

    assert.equal((await postJson(`${url}/store`, { key: 'seed-hash', value: 2 })).status, 200);
    const afterOverwrite = await storeHash(url);
    assert.notEqual(afterOverwrite, afterPut, 'an overwrite changes the hash');

    assert.equal((await del(`${url}/kv/seed-hash`)).status, 200);
    const afterDelete = await storeHash(url);
    assert.notEqual(afterDelete, afterOverwrite, 'a delete changes the hash');
    assert.equal(await storeHash(url), afterDelete);

    const reads = await Promise.all(Array.from({ length: 10 }, () => storeHash(url)));
    assert.deepEqual(new Set(reads), new Set([afterDelete]), 'concurrent reads agree');
  });

  test('reads, found or not, leave /store/hash alone', async () => {
    const before = await storeHash(url);
    await readKey(url, 'hello');
    await readKey(url, 'never-written');
    assert.equal(await storeHash(url), before);
  });
});
