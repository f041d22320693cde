// Goal: a node answers every hostile request with a clean 4xx JSON error (or a 2xx for a valid
// read) and changes nothing; method: 1,200 seeded generated requests (broken JSON, wrong types,
// deep nesting, huge keys and values, invalid UTF-8, oversize and stalled bodies, odd methods, path
// tricks, duplicated query params, garbage and mis-framed HTTP) sent as raw bytes to a real node
// started with --request-timeout 1, with /ping and an unchanged /store/hash checked after every
// batch, followed by pinned cases whose answer is known exactly.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { getJson, putJson } from '../helpers/http.ts';
import { type Cluster, startCluster } from '../helpers/node-process.ts';
import {
  answerProblem,
  buildRequest,
  type Expectation,
  errorLogLines,
  errorShapeProblem,
  exchange,
  type RawAnswer,
  Rng,
  seedFrom,
} from './hostile-support.ts';
import { mapConcurrent, readKey, storeHash } from './node-support.ts';

const SEED_VARIABLE = 'PEERKV_HOSTILE_SEED';
const CASES = 1_200;
const BATCH_SIZE = 100;
const CONCURRENCY = 16;
const PROBLEMS_SHOWN_MAX = 25;
const REQUEST_TIMEOUT_SECONDS = 1;
/** src/http/app.ts checks timeouts once a second, so a 408 comes up to a second late. */
const TIMEOUT_CHECK_MS = 1_000;
const TIMEOUT_ANSWER_MS_MAX = REQUEST_TIMEOUT_SECONDS * 1_000 + TIMEOUT_CHECK_MS + 1_500;
const KiB = 1024;
const MiB = 1024 * KiB;
const KEY_BYTES_MAX = 1024;
const VALUE_BYTES_MAX = MiB;
/** Bodies: client routes allow the value limit plus 16 KiB; resync control routes 1 MiB. */
const BODY_BYTES_MAX = VALUE_BYTES_MAX + 16 * KiB;
const SYNC_BODY_BYTES_MAX = MiB;
/** The resync page bound (8 MiB) plus one value plus 64 KiB of framing: what senders send. */
const REPLICATE_BODY_BYTES_MAX = 8 * MiB + VALUE_BYTES_MAX + 64 * KiB;
const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const PRINTABLE = `${ALNUM} !"#$%&'()*+,-./:;<=>?@[\\]^_\`{|}~`;
const JSON_TYPE: [string, string] = ['Content-Type', 'application/json'];

interface HostileCase {
  readonly kind: string;
  readonly chunks: readonly Buffer[];
  readonly expect: Expectation;
  /** For bodies refused by their declared length: see ExchangeOptions.earlyAnswerMs. */
  readonly earlyAnswerMs?: number;
}

const EARLY_ANSWER_MS = 200;

const refuse = (...statuses: number[]): Expectation => ({ statuses });
const readOrRefuse = (...statuses: number[]): Expectation => ({ statuses, readOk: true });

function request(method: string, target: string, body?: string | Buffer): Buffer {
  return buildRequest(method, target, { headers: [JSON_TYPE], body });
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** True when the node would take `body` as a JSON document (strict UTF-8, then JSON.parse). */
function parsesAsJson(body: string | Buffer): boolean {
  try {
    const text = typeof body === 'string' ? body : strictUtf8.decode(body);
    if (text.trim() === '') return false;
    JSON.parse(text);
    return true;
  } catch {
    // Not UTF-8 or not JSON: exactly what the caller is looking for.
    return false;
  }
}

function isValidUtf8(bytes: Buffer): boolean {
  try {
    strictUtf8.decode(bytes);
    return true;
  } catch {
    // Invalid: what the invalid-UTF-8 generators need.
    return false;
  }
}

function decodes(encoded: string): boolean {
  try {
    decodeURIComponent(encoded);
    return true;
  } catch {
    // URIError: the percent-encoding is not UTF-8, which is what the caller wants.
    return false;
  }
}

const hostileKey = (rng: Rng): string => `hostile-${rng.hex(8)}`;

function randomValue(rng: Rng): unknown {
  switch (rng.int(0, 5)) {
    case 0:
      return rng.text(rng.int(0, 40), ALNUM);
    case 1:
      return rng.int(-1_000_000, 1_000_000);
    case 2:
      return rng.chance(0.5);
    case 3:
      return null;
    case 4:
      return [rng.int(0, 9), rng.text(5, ALNUM), { n: rng.int(0, 9) }];
    default:
      return { name: rng.text(8, ALNUM), tags: [rng.text(3, ALNUM)] };
  }
}

/** A valid write body: sent only where the request is refused for another reason. */
const writeBody = (rng: Rng): string =>
  JSON.stringify({ key: hostileKey(rng), value: randomValue(rng) });

const JUNK = ['{', '}', '[', ']', '"', ',', ':', '\\', "'", 'x', '\t\u000b', 'nul', '\u0001'];
const CORRUPTIONS: readonly ((text: string, rng: Rng) => string)[] = [
  (text, rng) => text.slice(0, rng.int(0, text.length - 1)),
  (text, rng) => {
    const at = rng.int(0, text.length - 1);
    return text.slice(0, at) + rng.pick(JUNK) + text.slice(at + 1);
  },
  (text, rng) => {
    const at = rng.int(0, text.length);
    return text.slice(0, at) + rng.pick(JUNK) + text.slice(at);
  },
  (text, rng) => {
    const at = rng.int(0, text.length - 1);
    return text.slice(0, at) + text.slice(at + 1);
  },
  (text) => `${text}}`,
  (text) => `${text},`,
  (text) => `${text} x`,
  (text) => `${text}${text}`,
  (text) => text.replaceAll('"', "'"),
  (text) => text.replace(/"(\w+)":/g, '$1:'),
  (text) => text.replace(/}$/, ',}'),
  (text) => `/* comment */${text}`,
  (text) => text.replace(/:(-?\d+|true|false|null)/, ':NaN'),
];

function brokenJson(rng: Rng): HostileCase {
  const key = hostileKey(rng);
  const [method, target, text] = rng.pick([
    ['POST', '/store', JSON.stringify({ key, value: randomValue(rng) })],
    ['PUT', `/kv/${key}`, JSON.stringify(randomValue(rng))],
    ['GET', '/store/key', JSON.stringify({ key })],
    ['POST', '/replicate', JSON.stringify({ key, value: randomValue(rng) })],
  ] as const);
  let broken = text.slice(0, 1);
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const candidate = rng.pick(CORRUPTIONS)(text, rng);
    if (!parsesAsJson(candidate)) {
      broken = candidate;
      break;
    }
  }
  if (parsesAsJson(broken)) broken = '{';
  return { kind: 'broken-json', chunks: [request(method, target, broken)], expect: refuse(400) };
}

const WRONG_KEYS = [
  '42',
  '-1.5',
  '1e400',
  '[]',
  '["k"]',
  '{}',
  '{"k":"v"}',
  'null',
  'true',
  'false',
  '""',
  '"\\ud800"',
  '"\\udfff x"',
];

function wrongTypes(rng: Rng): HostileCase {
  const value = JSON.stringify(randomValue(rng));
  const wrongKey = rng.pick(WRONG_KEYS);
  const notObject = rng.pick(['[]', '"str"', '42', 'null', 'true', '[{"key":"k","value":1}]', '']);
  const [method, target, body] = rng.pick([
    ['POST', '/store', `{"key":${wrongKey},"value":${value}}`],
    ['POST', '/store', `{"value":${value}}`],
    ['POST', '/store', `{"key":"${hostileKey(rng)}"}`],
    ['POST', '/store', notObject],
    ['POST', '/store', `{"KEY":"k","VALUE":${value}}`],
    ['PUT', `/kv/${hostileKey(rng)}`, rng.pick(['', '   ', '\r\n'])],
    ['GET', '/store/key', `{"key":${wrongKey}}`],
    ['GET', '/store/key', notObject],
    ['POST', '/replicate', `{"key":${wrongKey},"value":${value}}`],
    ['POST', '/replicate', `{"key":"${hostileKey(rng)}"}`],
    ['POST', '/replicate', notObject],
  ] as const);
  return { kind: 'wrong-types', chunks: [request(method, target, body)], expect: refuse(400) };
}

function deepDocument(rng: Rng): string {
  switch (rng.int(0, 3)) {
    case 0: {
      const depth = rng.int(100_000, 300_000);
      return '['.repeat(depth) + ']'.repeat(depth);
    }
    case 1: {
      const depth = rng.int(100_000, 150_000);
      return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    }
    case 2: {
      const pairs = rng.int(50_000, 100_000);
      return `${'[{"a":'.repeat(pairs)}0${'}]'.repeat(pairs)}`;
    }
    default:
      return '['.repeat(rng.int(100_000, 500_000));
  }
}

function deepNesting(rng: Rng): HostileCase {
  const deep = deepDocument(rng);
  const key = hostileKey(rng);
  const version = `${(Date.now() * 1024).toString(16).padStart(14, '0')}-${rng.hex(16)}`;
  const [method, target, body] = rng.pick([
    ['PUT', `/kv/${key}`, deep],
    ['POST', '/store', `{"key":"${key}","value":${deep}}`],
    ['POST', '/replicate', `{"key":"${key}","value":${deep}}`],
    ['POST', '/replicate', `{"entries":[{"key":"${key}","value":${deep},"version":"${version}"}]}`],
    ['GET', '/store/key', `{"key":${deep}}`],
  ] as const);
  return { kind: 'deep-nesting', chunks: [request(method, target, body)], expect: refuse(400) };
}

function hugeKey(rng: Rng): HostileCase {
  const bytes = rng.pick([1025, 1026, 1100, 2048, 4096, 65_536, 400_000]);
  const key = rng.chance(0.5) ? 'k'.repeat(bytes) : 'é'.repeat(Math.ceil(bytes / 2) + 1);
  assert.ok(Buffer.byteLength(key) > KEY_BYTES_MAX);
  // In a URL the key only has to pass the 16 KiB header limit; a few times that is plenty.
  const encoded = encodeURIComponent(key.slice(0, 20_000));
  const [method, target, body] = rng.pick([
    ['POST', '/store', JSON.stringify({ key, value: 1 })],
    ['POST', '/replicate', JSON.stringify({ key, value: 1 })],
    ['GET', '/store/key', JSON.stringify({ key })],
    ['GET', `/store/key?key=${encoded}`, undefined],
    ['GET', `/kv?prefix=${encoded}`, undefined],
    ['PUT', `/kv/${encoded}`, '1'],
    ['DELETE', `/kv/${encoded}`, undefined],
  ] as const);
  const chunks = [request(method, target, body)];
  return { kind: 'huge-key', chunks, expect: refuse(400, 413, 414, 431) };
}

function hugeValue(rng: Rng): HostileCase {
  const over = rng.pick([1, 2, 100, 10_000, MiB]);
  const value = 'v'.repeat(VALUE_BYTES_MAX - 2 + over);
  const key = hostileKey(rng);
  const [method, target, body] = rng.pick([
    ['POST', '/store', JSON.stringify({ key, value })],
    ['PUT', `/kv/${key}`, JSON.stringify(value)],
    ['PUT', `/kv/${key}`, JSON.stringify({ data: value })],
    ['POST', '/replicate', JSON.stringify({ key, value })],
  ] as const);
  const head = buildRequest(method, target, {
    headers: [JSON_TYPE, ['Content-Length', String(Buffer.byteLength(body))]],
    framing: 'none',
  });
  return {
    kind: 'huge-value',
    chunks: [head, Buffer.from(body)],
    expect: refuse(413),
    earlyAnswerMs: EARLY_ANSWER_MS,
  };
}

const BAD_UTF8 = [
  [0xff],
  [0xfe],
  [0xc0, 0xaf],
  [0xc1, 0xbf],
  [0xe0, 0x80, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xfc, 0x80, 0x80, 0x80, 0x80, 0x80],
  [0xe2, 0x82],
  [0x80],
  [0xbf],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf0, 0x80, 0x80, 0xaf],
];

function badUtf8Bytes(rng: Rng): Buffer {
  if (rng.chance(0.7)) return Buffer.from(rng.pick(BAD_UTF8));
  const bytes = rng.bytes(rng.int(1, 16));
  for (let i = 0; i < bytes.length; i += 1) bytes[i] = (bytes[i] ?? 0) | 0x80;
  return bytes;
}

function invalidUtf8Body(rng: Rng): HostileCase {
  const key = hostileKey(rng);
  const [method, target, template] = rng.pick([
    ['POST', '/store', `{"key":"${key}","value":"a<BAD>b"}`],
    ['POST', '/store', `{"key":"${key}<BAD>","value":1}`],
    ['POST', '/store', `<BAD>{"key":"${key}","value":1}`],
    ['POST', '/store', `{"key":"${key}","value":1}<BAD>`],
    ['PUT', `/kv/${key}`, '"<BAD>"'],
    ['GET', '/store/key', '{"key":"<BAD>"}'],
    ['POST', '/replicate', `{"key":"${key}","value":"<BAD>"}`],
    ['POST', '/sync/fetch', '{"keys":["<BAD>"]}'],
  ] as const);
  let body = Buffer.alloc(0);
  do {
    const [head = '', tail = ''] = template.split('<BAD>');
    body = Buffer.concat([Buffer.from(head), badUtf8Bytes(rng), Buffer.from(tail)]);
  } while (isValidUtf8(body));
  return {
    kind: 'invalid-utf8-body',
    chunks: [request(method, target, body)],
    expect: refuse(400),
  };
}

const BAD_ENCODED = [
  '%FF',
  '%FE',
  '%C0%AF',
  '%C1%BF',
  '%E0%80%AF',
  '%ED%A0%80',
  '%F8%88%80%80%80',
  '%E2%82',
  '%80',
  '%F4%90%80%80',
  '%',
  '%Z1',
  '%E0%A4%A',
];

function invalidUtf8Path(rng: Rng): HostileCase {
  let encoded = '%FF';
  for (let attempt = 0; attempt < 20; attempt += 1) {
    // A bare '%' can join the text after it into a valid escape ('%41' is 'A'): draw again then.
    const candidate = `${rng.text(rng.int(0, 8), ALNUM)}${rng.pick(BAD_ENCODED)}${rng.text(rng.int(0, 8), ALNUM)}`;
    if (!decodes(candidate)) {
      encoded = candidate;
      break;
    }
  }
  const raw = `${rng.text(rng.int(0, 4), ALNUM)}\xff\xfe${rng.text(rng.int(0, 4), ALNUM)}`;
  const [method, target, body, expect] = rng.pick([
    ['GET', `/kv/${encoded}`, undefined, refuse(400)],
    ['DELETE', `/kv/${encoded}`, undefined, refuse(400)],
    ['PUT', `/kv/${encoded}`, JSON.stringify(randomValue(rng)), refuse(400)],
    ['GET', `/kv/${raw}`, undefined, refuse(400)],
    ['PUT', `/kv/${raw}`, '1', refuse(400)],
    // A query is decoded leniently today (404 for U+FFFD); the pinned test below wants 400.
    ['GET', `/store/key?key=${encoded}`, undefined, refuse(400, 404)],
    ['GET', `/kv?prefix=${encoded}`, undefined, readOrRefuse(400)],
  ] as const);
  return { kind: 'invalid-utf8-path', chunks: [request(method, target, body)], expect };
}

function bodyLimitOf(target: string): number {
  if (target === '/replicate') return REPLICATE_BODY_BYTES_MAX;
  if (target.startsWith('/sync/')) return SYNC_BODY_BYTES_MAX;
  return BODY_BYTES_MAX;
}

/**
 * A chunked body of exactly `totalBytes` data bytes and no final chunk: the node crosses its limit
 * on the last byte sent, so it refuses with nothing of ours left unread (no reset, see
 * ExchangeOptions.earlyAnswerMs) and no write of ours can race its close.
 */
function chunkedBody(totalBytes: number): Buffer[] {
  const pieceBytes = 64 * KiB;
  const parts: Buffer[] = [];
  for (let sent = 0; sent < totalBytes; sent += pieceBytes) {
    const size = Math.min(pieceBytes, totalBytes - sent);
    parts.push(Buffer.from(`${size.toString(16)}\r\n${'v'.repeat(size)}\r\n`));
  }
  return parts;
}

function oversizeBody(rng: Rng): HostileCase {
  const kind = 'oversize-body';
  const mode = rng.int(0, 2);
  if (mode === 0) {
    const target = rng.pick(['/store', `/kv/${hostileKey(rng)}`, '/replicate', '/sync/rows']);
    const declared = bodyLimitOf(target) + rng.int(1, 50 * MiB);
    const method = target.startsWith('/kv/') ? 'PUT' : 'POST';
    const head = buildRequest(method, target, {
      headers: [JSON_TYPE, ['Content-Length', String(declared)]],
      framing: 'none',
    });
    const partial = Buffer.from(
      `{"key":"${hostileKey(rng)}","value":"${'v'.repeat(rng.int(0, 1000))}`,
    );
    return { kind, chunks: [head, partial], expect: refuse(413), earlyAnswerMs: EARLY_ANSWER_MS };
  }
  if (mode === 1) {
    const target = rng.pick(['/store', '/sync/fetch', '/sync/buckets']);
    const head = buildRequest('POST', target, {
      headers: [JSON_TYPE, ['Transfer-Encoding', 'chunked']],
      framing: 'none',
    });
    return { kind, chunks: [head, ...chunkedBody(bodyLimitOf(target) + 1)], expect: refuse(413) };
  }
  // No Content-Length and no chunking: the request has no body; what follows is not HTTP.
  const head = buildRequest('POST', '/store', { headers: [JSON_TYPE], framing: 'none' });
  const tail = Buffer.from(
    `{"key":"${hostileKey(rng)}","value":"${'v'.repeat(rng.int(1, 64 * KiB))}"}`,
  );
  return { kind, chunks: [head, tail], expect: refuse(400, 413) };
}

function stalledBody(rng: Rng): HostileCase {
  const kind = 'stalled';
  const body = writeBody(rng);
  switch (rng.int(0, 2)) {
    case 0: {
      const declared = rng.int(body.length + 1, body.length + 100);
      const head = buildRequest('POST', '/store', {
        headers: [JSON_TYPE, ['Content-Length', String(declared)]],
        framing: 'none',
      });
      return { kind, chunks: [head, Buffer.from(body)], expect: refuse(408) };
    }
    case 1: {
      const head = buildRequest('PUT', `/kv/${hostileKey(rng)}`, {
        headers: [JSON_TYPE, ['Transfer-Encoding', 'chunked']],
        framing: 'none',
      });
      return { kind, chunks: [head, Buffer.from('10\r\n"abc')], expect: refuse(408) };
    }
    default: {
      const head = 'POST /store HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le';
      return { kind, chunks: [Buffer.from(head)], expect: refuse(408) };
    }
  }
}

const ODD_METHODS = [
  'PATCH',
  'OPTIONS',
  'PROPFIND',
  'PROPPATCH',
  'BREW',
  'TRACE',
  'MKCOL',
  'LOCK',
  'UNLOCK',
  'SEARCH',
  'PURGE',
  'COPY',
  'MOVE',
  'REPORT',
  'LINK',
  'UNLINK',
  'M-SEARCH',
  'NOTIFY',
  'SUBSCRIBE',
  'ACL',
  'BIND',
  'MKCALENDAR',
  'FOO',
  'WHEN',
];
const ROUTES = [
  '/store',
  '/store/key',
  '/store/hash',
  '/ping',
  '/kv',
  '/kv/x',
  '/replicate',
  '/sync/rows',
  '/sync/digest',
  '/cluster',
  '/nope',
  '/',
];
const WRONG_METHODS = [
  ['GET', '/store'],
  ['PUT', '/store'],
  ['DELETE', '/store'],
  ['POST', '/store/hash'],
  ['PUT', '/store/key'],
  ['POST', '/kv/x'],
  ['POST', '/kv'],
  ['PUT', '/ping'],
  ['GET', '/replicate'],
  ['PUT', '/replicate'],
  ['DELETE', '/sync/rows'],
  ['POST', '/cluster'],
] as const;

function oddMethod(rng: Rng): HostileCase {
  const [method, target] = rng.chance(0.7)
    ? [rng.pick(ODD_METHODS), rng.pick(ROUTES)]
    : rng.pick(WRONG_METHODS);
  const chunks = [request(method, target, writeBody(rng))];
  return { kind: 'odd-method', chunks, expect: refuse(400, 404, 405, 501) };
}

const READ_TRICKS = [
  '/kv/../store/hash',
  '/kv/..%2Fstore%2Fhash',
  '//store',
  '//store/hash',
  '/kv/%2e%2e/x',
  '/kv/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd',
  '/store/key/',
  '/store/key/?key=x',
  '/kv/',
  '/kv/./x',
  '/./ping',
  '/ping/../store/hash',
  '/%70ing',
  '/store%2Fhash',
  '/STORE/HASH',
  '/kv/a%00b',
  '/kv/%00',
  '/kv?prefix=%00',
  '/store/key?key=%00',
  '/store/key?key=..%2F..',
  '/ping#frag',
  '/kv/x#frag',
  '/kv/x?',
  '*',
  'http://127.0.0.1/store/hash',
  '/kv/%25',
  '/kv/%252e',
  '/kv/a;b',
  '/kv/\t',
  '/kv/a b',
  '/kv/a\u0000b',
  '/ping\u0000',
  '/kv/\\..\\x',
];
/** Paths that cannot name a key, so even a write method with a valid body must be refused. */
const WRITE_TRICKS = ['/kv/', '/kv/%', '/kv/%ZZ', '/kv/%E0%A4%A', '//store', '/kv'];

function pathTrick(rng: Rng): HostileCase {
  const kind = 'path-trick';
  switch (rng.int(0, 4)) {
    case 0:
    case 1:
      return {
        kind,
        chunks: [request('GET', rng.pick(READ_TRICKS))],
        expect: readOrRefuse(400, 404),
      };
    case 2: {
      const target = rng.chance(0.5)
        ? `/kv/${'a'.repeat(rng.int(KEY_BYTES_MAX + 1, 12_000))}`
        : `/${'x'.repeat(rng.int(16 * KiB, 100 * KiB))}`;
      return { kind, chunks: [request('GET', target)], expect: refuse(400, 404, 414, 431) };
    }
    case 3: {
      const method = rng.pick(['PUT', 'DELETE', 'POST']);
      const chunks = [request(method, rng.pick(WRITE_TRICKS), writeBody(rng))];
      return { kind, chunks, expect: refuse(400, 404, 405) };
    }
    default: {
      const method = rng.pick(['PUT', 'DELETE']);
      const target = `/kv/${'k'.repeat(rng.int(KEY_BYTES_MAX + 1, 4_000))}`;
      return { kind, chunks: [request(method, target, '1')], expect: refuse(400) };
    }
  }
}

const BAD_QUERIES = [
  '/store/key?key=a&key=b',
  '/store/key?key=a&key=a',
  '/store/key?key=&key=x',
  '/store/key?key=',
  '/store/key?key[]=a',
  '/store/key?key[a]=b',
  '/kv?limit=1&limit=2',
  '/kv?prefix=a&prefix=b',
  '/kv?after=a&after=a',
  '/kv?limit=0',
  '/kv?limit=1001',
  '/kv?limit=-1',
  '/kv?limit=1.5',
  '/kv?limit=abc',
  '/kv?limit=1e3',
  '/kv?limit=%20',
  '/kv?limit=',
  '/kv?limit=0x10',
  '/kv?limit=+5',
  `/kv?prefix=${'p'.repeat(KEY_BYTES_MAX + 1)}`,
  `/kv?after=${'p'.repeat(KEY_BYTES_MAX + 1)}`,
];

function badQuery(rng: Rng): HostileCase {
  const kind = 'bad-query';
  if (rng.chance(0.3)) {
    const name = rng.pick(['key', 'limit', 'prefix', 'after']);
    const route = name === 'key' ? '/store/key' : '/kv';
    const repeats = rng.int(2, 500);
    const target = `${route}?${Array.from({ length: repeats }, () => `${name}=1`).join('&')}`;
    return { kind, chunks: [request('GET', target)], expect: refuse(400, 431) };
  }
  return { kind, chunks: [request('GET', rng.pick(BAD_QUERIES))], expect: refuse(400) };
}

const ODD_HTTP = [
  'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
  '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03',
  'GET / HTTP/9.9\r\nHost: x\r\n\r\n',
  'GET /ping HTTP/1.1\r\nHost x\r\n\r\n',
  'GET /ping HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n',
  'GET /ping HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n',
  'GET /ping HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n',
  'GET\r\n\r\n',
  '\r\n\r\n',
  'get /ping HTTP/1.1\r\nHost: x\r\n\r\n',
  `GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
  `GET /ping HTTP/1.1\r\nHost: x\r\n${'X-Many: 1\r\n'.repeat(3_000)}\r\n`,
  'GET /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
  'GET /ping\r\n',
  'GET /ping HTTP/1.1 extra\r\nHost: x\r\n\r\n',
];
/** Reads that a lenient parser may take: a 2xx answer to them is fine too. */
const LENIENT_HTTP = [
  'GET /ping HTTP/1.1\nHost: x\nConnection: close\n\n',
  'GET  /ping  HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  ' GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  'GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Empty:\r\n\r\n',
];

function garbage(rng: Rng): HostileCase {
  const kind = 'garbage';
  const expect = refuse(400, 408);
  switch (rng.int(0, 3)) {
    case 0:
      return {
        kind,
        chunks: [Buffer.from(`${rng.text(rng.int(1, 200), PRINTABLE)}\r\n\r\n`)],
        expect,
      };
    case 1:
      return { kind, chunks: [rng.bytes(rng.int(1, 2_000))], expect };
    case 2: {
      const chunks = [Buffer.from(rng.pick(LENIENT_HTTP), 'latin1')];
      return { kind, chunks, expect: readOrRefuse(400, 408) };
    }
    default:
      return { kind, chunks: [Buffer.from(rng.pick(ODD_HTTP), 'latin1')], expect };
  }
}

function badFraming(rng: Rng): HostileCase {
  const body = writeBody(rng);
  const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
  const [headers, payload] = rng.pick([
    [
      [
        ['Content-Length', String(body.length)],
        ['Transfer-Encoding', 'chunked'],
      ],
      chunked,
    ],
    [
      [
        ['Content-Length', String(body.length)],
        ['Content-Length', String(body.length + 1)],
      ],
      body,
    ],
    [[['Content-Length', '-1']], body],
    [[['Content-Length', 'abc']], body],
    [[['Content-Length', '1e3']], body],
    [[['Content-Length', '1 0']], body],
    [[['Content-Length', '0x10']], body],
    [[['Content-Length', '+5']], body],
    [[['Transfer-Encoding', 'gzip']], body],
    [[['Transfer-Encoding', 'chunked, gzip']], chunked],
    [[['Transfer-Encoding', 'chunked']], `ZZ\r\n${body}\r\n0\r\n\r\n`],
    [[['Transfer-Encoding', 'chunked']], `2\r\n${body}\r\n0\r\n\r\n`],
    [[['Transfer-Encoding', 'chunked']], `ffffffffffffffffff\r\n${body}`],
    [[['Content-Length', '5']], body],
    [[['Content-Length', String(rng.int(1, body.length - 1))]], body],
  ] as const);
  const head = buildRequest('POST', '/store', {
    headers: [JSON_TYPE, ...headers],
    framing: 'none',
  });
  const chunks = [head, Buffer.from(payload)];
  return { kind: 'bad-framing', chunks, expect: refuse(400, 408, 413, 501) };
}

const GENERATORS: readonly (readonly [number, (rng: Rng) => HostileCase])[] = [
  [14, brokenJson],
  [12, wrongTypes],
  [4, deepNesting],
  [6, hugeKey],
  [3, hugeValue],
  [8, invalidUtf8Body],
  [8, invalidUtf8Path],
  [4, oversizeBody],
  [2, stalledBody],
  [10, oddMethod],
  [10, pathTrick],
  [6, badQuery],
  [8, garbage],
  [5, badFraming],
];

function generateCase(rng: Rng): HostileCase {
  const total = GENERATORS.reduce((sum, [weight]) => sum + weight, 0);
  let roll = rng.int(0, total - 1);
  for (const [weight, generate] of GENERATORS) {
    if (roll < weight) return generate(rng);
    roll -= weight;
  }
  throw new Error('unreachable: weights cover every roll');
}

function describeCase(item: HostileCase): string {
  const head = item.chunks[0]?.subarray(0, 160).toString('latin1') ?? '';
  return `${item.kind} ${JSON.stringify(head)}`;
}

function assertRefusal(answer: RawAnswer, status: number, code: string, what: string): void {
  const seen = `${what} -> ${answer.status} ${answer.text.slice(0, 200)} (${answer.outcome})`;
  assert.equal(answer.status, status, seen);
  assert.match(answer.headers['content-type'] ?? '', /^application\/json/, seen);
  assert.equal(errorShapeProblem(answer.json, seen), undefined);
  assert.equal((answer.json as { code: string }).code, code, seen);
}

describe('hostile input to one node (--request-timeout 1)', () => {
  let cluster: Cluster | undefined;
  let url = '';
  let port = 0;

  before(async () => {
    cluster = await startCluster({
      nodes: 1,
      extraArgs: ['--request-timeout', String(REQUEST_TIMEOUT_SECONDS)],
    });
    url = cluster.node(0).url;
    port = cluster.node(0).port;
  });

  after(async () => {
    await cluster?.cleanup();
  });

  /** Problems with /ping and /store/hash at one checkpoint (none when the node is fine). */
  async function checkpoint(hashExpected: string, when: string): Promise<string[]> {
    const ping = await getJson(`${url}/ping`, { timeoutMs: 3_000 });
    const hash = await storeHash(url);
    return [
      ...(ping.status === 200 ? [] : [`${when}: /ping answered ${ping.status} ${ping.text}`]),
      ...(hash === hashExpected ? [] : [`${when}: /store/hash changed to ${hash}`]),
    ];
  }

  test(`${CASES} seeded hostile requests get 4xx JSON answers and change nothing`, async (t) => {
    const seed = seedFrom(SEED_VARIABLE);
    t.diagnostic(`seed ${seed} (replay with ${SEED_VARIABLE}=${seed})`);
    const rng = new Rng(seed);
    const cases = Array.from({ length: CASES }, () => generateCase(rng));
    const kinds = new Map<string, number>();
    for (const item of cases) kinds.set(item.kind, (kinds.get(item.kind) ?? 0) + 1);
    t.diagnostic(`cases by kind: ${[...kinds].map(([kind, n]) => `${kind} ${n}`).join(', ')}`);
    // No case is a valid write, so /store/hash must hold still the whole time: it is checked, with
    // /ping, after every BATCH_SIZE answers, without stopping the other lanes.
    const hashBefore = await storeHash(url);
    const problems: string[] = [];
    let answered = 0;
    await mapConcurrent(cases, CONCURRENCY, async (item, index) => {
      const answer = await exchange(port, item.chunks, { earlyAnswerMs: item.earlyAnswerMs });
      const problem = answerProblem(answer, item.expect);
      if (problem) problems.push(`#${index} ${describeCase(item)}: ${problem}`);
      answered += 1;
      if (answered % BATCH_SIZE === 0 || answered === cases.length) {
        problems.push(...(await checkpoint(hashBefore, `after ${answered} answers`)));
      }
    });
    const shown = problems.slice(0, PROBLEMS_SHOWN_MAX).join('\n');
    assert.equal(problems.length, 0, `seed ${seed}: ${problems.length} bad answers:\n${shown}`);
  });

  test('a declared body that never comes is 408 within the request timeout', async () => {
    const hashBefore = await storeHash(url);
    const stalls: [string, Buffer[]][] = [
      [
        'Content-Length: 50, no body',
        [
          Buffer.from(
            'POST /store HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n',
          ),
        ],
      ],
      [
        'Content-Length: 50, 10 bytes',
        [
          Buffer.from(
            'PUT /kv/stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{"a":12345',
          ),
        ],
      ],
      [
        'chunked, cut mid-chunk',
        [
          Buffer.from(
            'POST /replicate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n{"key":',
          ),
        ],
      ],
    ];
    const answers = await Promise.all(stalls.map(([, chunks]) => exchange(port, chunks)));
    for (const [index, [what]] of stalls.entries()) {
      const answer = answers[index]!;
      assertRefusal(answer, 408, 'REQUEST_TIMEOUT', what);
      assert.ok(
        answer.elapsedMs < TIMEOUT_ANSWER_MS_MAX,
        `${what}: 408 after ${Math.round(answer.elapsedMs)} ms, allowed ${TIMEOUT_ANSWER_MS_MAX}`,
      );
    }
    assert.equal(await storeHash(url), hashBefore);
    assert.equal((await readKey(url, 'stalled')).status, 404);
  });

  test('path tricks name a key literally and never reach another route', async () => {
    const cases: [string, number, string][] = [
      ['/kv/../store/hash', 404, 'KEY_NOT_FOUND'],
      ['/kv/%2e%2e/x', 404, 'KEY_NOT_FOUND'],
      ['/kv/..%2Fstore%2Fhash', 404, 'KEY_NOT_FOUND'],
      ['//store', 404, 'NOT_FOUND'],
      ['/kv/a%00b', 404, 'KEY_NOT_FOUND'],
      ['/store/key/?key=missing', 404, 'KEY_NOT_FOUND'],
    ];
    for (const [target, status, code] of cases) {
      assertRefusal(await exchange(port, request('GET', target)), status, code, `GET ${target}`);
    }
    // The literal key "../store/hash" is stored and read like any other key.
    const hashBefore = await storeHash(url);
    assert.equal((await putJson(`${url}/kv/..%2Fstore%2Fhash`, 'dots')).status, 200);
    const read = await exchange(port, request('GET', '/kv/../store/hash'));
    assert.equal(read.status, 200, read.text);
    assert.deepEqual((read.json as { key: string; value: string }).value, 'dots');
    assert.equal((read.json as { key: string }).key, '../store/hash');
    assert.notEqual(await storeHash(url), hashBefore);
    for (const method of ['PUT', 'DELETE']) {
      const answer = await exchange(port, request(method, '/kv/', '"empty key"'));
      assert.ok(answer.status === 404 || answer.status === 400, `${method} /kv/: ${answer.text}`);
    }
  });

  // A query value with invalid percent-encoded UTF-8 must not be decoded leniently to U+FFFD
  // (which would make ?key=%FF, %C0%AF and %EF%BF%BD alias one key): it is refused with 400.
  test('invalid UTF-8 in a query parameter is 400, as it is in a path', async () => {
    assert.equal((await putJson(`${url}/kv/%EF%BF%BD`, 'replacement char')).status, 200);
    for (const query of ['key=%FF', 'key=%C0%AF', 'key=%ED%A0%80']) {
      const answer = await exchange(port, request('GET', `/store/key?${query}`));
      assertRefusal(answer, 400, 'BAD_REQUEST', `GET /store/key?${query}`);
    }
    const listing = await exchange(port, request('GET', '/kv?prefix=%FF'));
    assertRefusal(listing, 400, 'BAD_REQUEST', 'GET /kv?prefix=%FF');
  });

  test('HTTP-level refusals are JSON errors too', async (t) => {
    const cases: [string, string, number][] = [
      // No Host header on HTTP/1.1: node:http answers 400 with an empty body by itself.
      ['no Host header', 'GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n', 400],
      // An Expect the server does not know: node:http answers 417 with an empty body.
      [
        'unknown Expect',
        'POST /store HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: bananas\r\nContent-Length: 2\r\n\r\n{}',
        417,
      ],
      // CONNECT: node:http closes the socket without a word when nobody listens for 'connect'.
      ['CONNECT', 'CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n', 405],
    ];
    for (const [what, raw, status] of cases) {
      await t.test(what, async () => {
        const answer = await exchange(port, Buffer.from(raw, 'latin1'));
        const seen = `${what} -> ${answer.status} ${JSON.stringify(answer.text)} (${answer.outcome})`;
        assert.ok(answer.status !== undefined, `no HTTP answer: ${seen}`);
        assert.ok(answer.status >= 400 && answer.status < 500, seen);
        assert.ok(answer.status === status || answer.status === 400, seen);
        assert.match(answer.headers['content-type'] ?? '', /^application\/json/, seen);
        assert.equal(errorShapeProblem(answer.json, seen), undefined);
      });
    }
  });

  test('after all of it the node serves normally and logged no internal error', async () => {
    assert.equal((await getJson(`${url}/ping`)).text, '{"message":"pong"}');
    const put = await putJson(`${url}/kv/after-hostile`, { ok: true });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual((await readKey(url, 'after-hostile')).body, { value: { ok: true } });
    assert.deepEqual(errorLogLines(cluster!.node(0).logPath), []);
  });
});
