// Checks that every bad request gets its status and a JSON {"error","code"} body and changes
// nothing, by sending each one (raw bytes where needed) to a real node process and comparing
// /store/hash and the key before and after; a second node checks that --max-value-bytes lowers the
// value limit.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { before, describe, test } from 'node:test';
import { getJson, httpRequest, postJson, putJson } from '../helpers/http.ts';
import { useOneNode } from '../helpers/node-process.ts';
import { type Answer, assertError, rawHttp, readKey, storeHash } from './node-support.ts';

const MiB = 1024 * 1024;
const VALUE_BYTES_MAX = MiB;
/** What src/limits.ts allows a body beyond the value limit; a body past the sum is refused. */
const BODY_BYTES_MAX = VALUE_BYTES_MAX + 16 * 1024;
const JSON_HEADERS = { 'Content-Type': 'application/json' };

/** A string value whose JSON text is exactly `bytes` long. */
function valueOfJsonBytes(bytes: number): string {
  return 'v'.repeat(bytes - 2);
}

/** pino lines at error level or above (an internal fault that became a 500, say). */
function errorLogLines(logPath: string): string[] {
  return fs
    .readFileSync(logPath, 'utf8')
    .split('\n')
    .filter((line) => /"level":(50|60)/.test(line));
}

describe('bad requests to one node', () => {
  const one = useOneNode();
  let url = '';
  let port = 0;

  before(() => {
    url = one.url;
    port = one.port;
  });

  /** Sends a bad request, checks its error answer, and checks that the store did not change. */
  async function refused(
    what: string,
    send: () => Promise<Answer>,
    status: number,
    code: string,
    keysNotWritten: readonly string[] = [],
  ): Promise<Answer> {
    const hashBefore = await storeHash(url);
    const answer = await send();
    assertError(answer, status, code, what);
    assert.equal(await storeHash(url), hashBefore, `${what}: /store/hash changed`);
    for (const key of keysNotWritten) {
      assertError(await readKey(url, key), 404, 'KEY_NOT_FOUND', `${what}: key ${key} written`);
    }
    return answer;
  }

  const postRaw = (body: string | Buffer) => () =>
    httpRequest('POST', `${url}/store`, { rawBody: body, headers: JSON_HEADERS });

  test('malformed JSON is 400 BAD_JSON', async () => {
    for (const body of ['{"key":"bad-json","value":', '{key:"bad-json"}', "{'key':'x'}", 'nul']) {
      await refused(`POST /store ${body}`, postRaw(body), 400, 'BAD_JSON', ['bad-json']);
    }
    await refused(
      'PUT /kv malformed',
      () => httpRequest('PUT', `${url}/kv/bad-json`, { rawBody: '{"a":', headers: JSON_HEADERS }),
      400,
      'BAD_JSON',
      ['bad-json'],
    );
    await refused(
      'GET /store/key malformed body',
      () => httpRequest('GET', `${url}/store/key`, { rawBody: '{"key":', headers: JSON_HEADERS }),
      400,
      'BAD_JSON',
    );
  });

  test('a body that is not a JSON object is 400 BAD_REQUEST', async () => {
    for (const body of ['[]', '["k","v"]', '"hello"', '42', 'null', 'true', '', '   ']) {
      await refused(`POST /store ${JSON.stringify(body)}`, postRaw(body), 400, 'BAD_REQUEST');
    }
    await refused(
      'GET /store/key with an array body',
      () => httpRequest('GET', `${url}/store/key`, { rawBody: '["hello"]', headers: JSON_HEADERS }),
      400,
      'BAD_REQUEST',
    );
  });

  test('a missing, non-string, empty or ill-formed key is 400 BAD_KEY', async () => {
    const bodies: unknown[] = [
      { value: 'no key' },
      { key: 42, value: 'x' },
      { key: null, value: 'x' },
      { key: { nested: 'k' }, value: 'x' },
      { key: ['k'], value: 'x' },
      { key: true, value: 'x' },
      { key: '', value: 'x' },
    ];
    for (const body of bodies) {
      await refused(
        `POST /store ${JSON.stringify(body)}`,
        () => postJson(`${url}/store`, body),
        400,
        'BAD_KEY',
      );
    }
    // A lone surrogate is not a Unicode string: it has no UTF-8 form.
    await refused('lone surrogate key', postRaw('{"key":"\\ud800","value":1}'), 400, 'BAD_KEY');
    for (const query of ['key=', 'key=a&key=b']) {
      await refused(
        `GET /store/key?${query}`,
        () => getJson(`${url}/store/key?${query}`),
        400,
        'BAD_KEY',
      );
    }
    await refused(
      'GET /store/key body without key',
      () => getJson(`${url}/store/key`, { json: { value: 'x' } }),
      400,
      'BAD_KEY',
    );
  });

  test('a key of 1,025 UTF-8 bytes is 400 KEY_TOO_LARGE; 1,024 bytes is accepted', async () => {
    // Two-byte characters: the limit counts UTF-8 bytes, not characters.
    const longest = 'é'.repeat(512);
    const tooLong = `${longest}x`;
    assert.equal(Buffer.byteLength(longest), 1024);
    assert.equal(Buffer.byteLength(tooLong), 1025);
    await refused(
      'POST /store 1025-byte key',
      () => postJson(`${url}/store`, { key: tooLong, value: 'x' }),
      400,
      'KEY_TOO_LARGE',
    );
    await refused(
      'PUT /kv 1025-byte key',
      () => putJson(`${url}/kv/${encodeURIComponent(tooLong)}`, 'x'),
      400,
      'KEY_TOO_LARGE',
    );
    await refused(
      'GET /kv 1025-byte key',
      () => getJson(`${url}/kv/${encodeURIComponent(tooLong)}`),
      400,
      'KEY_TOO_LARGE',
    );

    // Nothing under that prefix was written (the key itself cannot even be asked for).
    const listed = await getJson(`${url}/kv?${new URLSearchParams({ prefix: longest })}`);
    assert.deepEqual(listed.body, { items: [], next: null });

    const stored = await postJson(`${url}/store`, { key: longest, value: 'longest' });
    assert.equal(stored.status, 200, stored.text);
    assert.deepEqual((await readKey(url, longest)).body, { value: 'longest' });
    const viaPath = await putJson(`${url}/kv/${encodeURIComponent(longest)}`, 'via path');
    assert.equal(viaPath.status, 200, viaPath.text);
    assert.deepEqual((await readKey(url, longest)).body, { value: 'via path' });
  });

  test('a missing value is 400 BAD_VALUE', async () => {
    await refused(
      'POST /store without value',
      () => postJson(`${url}/store`, { key: 'no-value' }),
      400,
      'BAD_VALUE',
      ['no-value'],
    );
    await refused(
      'PUT /kv with an empty body',
      () => httpRequest('PUT', `${url}/kv/no-value`, { rawBody: '', headers: JSON_HEADERS }),
      400,
      'BAD_VALUE',
      ['no-value'],
    );
  });

  test('a value over 1 MiB of JSON text is 413 VALUE_TOO_LARGE; exactly 1 MiB is accepted', async () => {
    const over = valueOfJsonBytes(VALUE_BYTES_MAX + 1);
    await refused(
      'POST /store value 1 MiB + 1',
      () => postJson(`${url}/store`, { key: 'big-value', value: over }),
      413,
      'VALUE_TOO_LARGE',
      ['big-value'],
    );
    await refused(
      'PUT /kv value 1 MiB + 1',
      () => putJson(`${url}/kv/big-value`, over),
      413,
      'VALUE_TOO_LARGE',
      ['big-value'],
    );
    // Objects are measured as their JSON text too.
    const overObject = { data: 'o'.repeat(VALUE_BYTES_MAX) };
    await refused(
      'PUT /kv object value over 1 MiB',
      () => putJson(`${url}/kv/big-value`, overObject),
      413,
      'VALUE_TOO_LARGE',
      ['big-value'],
    );

    const exact = valueOfJsonBytes(VALUE_BYTES_MAX);
    const stored = await postJson(`${url}/store`, { key: 'big-value', value: exact });
    assert.equal(stored.status, 200, stored.text);
    const read = await readKey(url, 'big-value');
    assert.equal(read.status, 200);
    assert.equal((read.body as { value: string }).value, exact);
    const viaPut = await putJson(`${url}/kv/big-value-2`, exact);
    assert.equal(viaPut.status, 200, viaPut.text);
  });

  test('a body over the limit is 413 BODY_TOO_LARGE, by Content-Length and by chunks', async () => {
    const declared = await refused(
      'Content-Length over the limit',
      () =>
        rawHttp(port, 'POST', '/store', {
          headers: { ...JSON_HEADERS, 'Content-Length': String(BODY_BYTES_MAX + 1) },
          body: '{"key":"big-body","value":"',
        }),
      413,
      'BODY_TOO_LARGE',
      ['big-body'],
    );
    assert.equal(declared.headers.connection, 'close');
    await refused(
      'GET /store/key with a body over the limit',
      () =>
        rawHttp(port, 'GET', '/store/key', {
          headers: { ...JSON_HEADERS, 'Content-Length': String(BODY_BYTES_MAX + 1) },
          body: '{"key":"',
        }),
      413,
      'BODY_TOO_LARGE',
    );

    const chunk = Buffer.from('v'.repeat(64 * 1024));
    const chunks: Buffer[] = [];
    for (let sent = 0; sent <= BODY_BYTES_MAX; sent += chunk.length) {
      chunks.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n'));
    }
    chunks.push(Buffer.from('0\r\n\r\n'));
    await refused(
      'chunked body over the limit',
      () =>
        rawHttp(port, 'PUT', '/kv/big-body', {
          headers: { ...JSON_HEADERS, 'Transfer-Encoding': 'chunked' },
          body: Buffer.from('1\r\n"\r\n'),
          chunks,
        }),
      413,
      'BODY_TOO_LARGE',
      ['big-body'],
    );
    // The refused connections did not hurt the node.
    assert.equal((await getJson(`${url}/ping`)).status, 200);
  });

  test('a body that is not UTF-8 is 400', async () => {
    const invalid = [
      Buffer.concat([
        Buffer.from('{"key":"bad-utf8","value":"'),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('"}'),
      ]),
      // An overlong encoding of '/' and a UTF-8-encoded surrogate: both are invalid UTF-8.
      Buffer.concat([
        Buffer.from('{"key":"bad-utf8","value":"'),
        Buffer.from([0xc0, 0xaf]),
        Buffer.from('"}'),
      ]),
      Buffer.concat([
        Buffer.from('{"key":"bad-utf8","value":"'),
        Buffer.from([0xed, 0xa0, 0x80]),
        Buffer.from('"}'),
      ]),
      // Truncated multi-byte sequence at the end of the key.
      Buffer.concat([
        Buffer.from('{"value":1,"key":"bad-utf8'),
        Buffer.from([0xe2, 0x82]),
        Buffer.from('"}'),
      ]),
    ];
    for (const [index, body] of invalid.entries()) {
      await refused(`invalid UTF-8 body ${index}`, postRaw(body), 400, 'BAD_JSON', ['bad-utf8']);
    }
    await refused(
      'PUT /kv invalid UTF-8 body',
      () =>
        httpRequest('PUT', `${url}/kv/bad-utf8`, { rawBody: invalid[0], headers: JSON_HEADERS }),
      400,
      'BAD_JSON',
      ['bad-utf8'],
    );
  });

  test('bad percent-encoding in the path is 400 BAD_KEY', async () => {
    for (const target of [
      '/kv/%ZZ',
      '/kv/abc%',
      '/kv/%E0%A4%A',
      '/kv/%C0%AF',
      '/kv/%ED%A0%80',
      '/kv/%FF',
    ]) {
      for (const method of ['GET', 'DELETE']) {
        await refused(`${method} ${target}`, () => rawHttp(port, method, target), 400, 'BAD_KEY');
      }
      await refused(
        `PUT ${target}`,
        () => rawHttp(port, 'PUT', target, { headers: JSON_HEADERS, body: '"x"' }),
        400,
        'BAD_KEY',
      );
    }
  });

  test('an unknown route is 404 NOT_FOUND', async () => {
    for (const [method, target] of [
      ['GET', '/nope'],
      ['POST', '/nope'],
      ['GET', '/store/nope'],
      ['GET', '/kvx/a'],
      ['DELETE', '/nope/'],
    ] as const) {
      await refused(`${method} ${target}`, () => rawHttp(port, method, target), 404, 'NOT_FOUND');
    }
  });

  test('a wrong method on a known route is 405 with Allow listing the right methods', async () => {
    const cases: [string, string, string[]][] = [
      ['DELETE', '/store/hash', ['GET']],
      ['POST', '/store/hash', ['GET']],
      ['POST', '/ping', ['GET']],
      ['PUT', '/ping', ['GET']],
      ['GET', '/store', ['POST']],
      ['DELETE', '/store', ['POST']],
      ['PUT', '/store/key', ['GET']],
      ['PATCH', '/kv/x', ['DELETE', 'GET', 'PUT']],
      ['POST', '/kv/x', ['DELETE', 'GET', 'PUT']],
      ['DELETE', '/kv', ['GET']],
      ['GET', '/replicate', ['POST']],
    ];
    for (const [method, target, allowed] of cases) {
      const answer = await refused(
        `${method} ${target}`,
        () =>
          rawHttp(port, method, target, { headers: JSON_HEADERS, body: '{"key":"k","value":1}' }),
        405,
        'METHOD_NOT_ALLOWED',
        ['k'],
      );
      const allow = (answer.headers.allow ?? '').split(',').map((name) => name.trim());
      assert.deepEqual(allow.sort(), allowed, `${method} ${target}: Allow ${answer.headers.allow}`);
    }
  });

  test('after all of it the node is up and logged no internal error', async () => {
    const ping = await getJson(`${url}/ping`);
    assert.equal(ping.status, 200);
    assert.deepEqual(errorLogLines(one.node.logPath), []);
  });
});

describe('a node started with --max-value-bytes 100', () => {
  const one = useOneNode({ extraArgs: ['--max-value-bytes', '100'] });
  let url = '';

  before(() => {
    url = one.url;
  });

  test('takes a value of 100 bytes of JSON text and refuses 101 with 413', async () => {
    const exact = valueOfJsonBytes(100);
    const over = valueOfJsonBytes(101);
    assert.equal((await postJson(`${url}/store`, { key: 'small', value: exact })).status, 200);
    assert.equal((await putJson(`${url}/kv/small-put`, exact)).status, 200);
    assert.deepEqual((await readKey(url, 'small')).body, { value: exact });

    for (const [what, send] of [
      ['POST /store', () => postJson(`${url}/store`, { key: 'small-over', value: over })],
      ['PUT /kv', () => putJson(`${url}/kv/small-over`, over)],
      ['PUT /kv object', () => putJson(`${url}/kv/small-over`, { list: Array(60).fill(1) })],
      [
        'POST /replicate (seed shape)',
        () => postJson(`${url}/replicate`, { key: 'small-over', value: over }),
      ],
    ] as const) {
      const hashBefore = await storeHash(url);
      assertError(await send(), 413, 'VALUE_TOO_LARGE', what);
      assert.equal(await storeHash(url), hashBefore, what);
      assertError(await readKey(url, 'small-over'), 404, 'KEY_NOT_FOUND', what);
    }
  });

  test('refuses a body far past the lowered limit with 413', async () => {
    const answer = await postJson(`${url}/store`, {
      key: 'small-body',
      value: 'b'.repeat(64 * 1024),
    });
    assert.equal(answer.status, 413, answer.text);
    assertError(await readKey(url, 'small-body'), 404, 'KEY_NOT_FOUND');
  });
});
