// The middle test tier for the HTTP layer: the real polka app (src/http/app.ts) with the real
// client, batch and peer routes on port 0, over fake in-memory services instead of a node —
// no processes, no SQLite. It pins down what each route answers (status, JSON, headers), that
// a refused request changes nothing, and what the peer routes hand to the store.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import pino from 'pino';
import { createHttpServer, type HttpServer } from '../../src/http/app.ts';
import { batchRoutes } from '../../src/http/batch-routes.ts';
import { BodyBudget } from '../../src/http/body-budget.ts';
import { type KvService, kvRoutes, type LocalWrite } from '../../src/http/kv-routes.ts';
import { type SyncService, syncRoutes } from '../../src/http/sync-routes.ts';
import { limits } from '../../src/limits.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import { Authorizer } from '../../src/security/authorizer.ts';
import { BucketDigest, GROUPS } from '../../src/store/digest.ts';
import type { Entry, Mutation, MutationResult } from '../../src/store/types.ts';
import { compareVersions, formatVersion, type Version } from '../../src/version.ts';
import { del, getJson, httpRequest, postJson, putJson } from '../helpers/http.ts';

const NODE_ID = '00000000000000aa';
const PEER_ID = '00000000000000bb';
const WALL_MS = Date.UTC(2026, 0, 1);

/** A store in a Map: versions from a counter, conditions checked as the real store does. */
class FakeStore {
  readonly entries = new Map<string, Entry>();
  readonly submitted: { mutations: readonly Mutation[]; atomic: boolean }[] = [];
  room: number = limits.writeQueueMutationsMax;
  #counter = 1;

  live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    return entry && entry.valueJson !== null ? entry : undefined;
  }

  write(mutation: LocalWrite): MutationResult {
    const current = this.live(mutation.key);
    const condition = mutation.condition;
    const holds =
      condition === undefined ||
      (condition.kind === 'absent' && !current) ||
      (condition.kind === 'exists' && current !== undefined) ||
      (condition.kind === 'match' &&
        current !== undefined &&
        compareVersions(current.version, condition.version) === 0);
    if (!holds) {
      return {
        applied: false,
        version: current?.version ?? { timestamp: 0, nodeId: '0000000000000000' },
        existed: current !== undefined,
        refused: 'condition',
      };
    }
    this.#counter += 1;
    const version: Version = { timestamp: this.#counter * 1024, nodeId: NODE_ID };
    this.entries.set(mutation.key, {
      key: mutation.key,
      valueJson: mutation.valueJson,
      version,
      ...(mutation.expiresAt === undefined ? {} : { expiresAt: mutation.expiresAt }),
    });
    return { applied: true, version, existed: current !== undefined };
  }
}

function kvService(store: FakeStore): KvService {
  return {
    nodeId: NODE_ID,
    instanceId: '00000000000000cc',
    get: (key) => store.live(key),
    list: (prefix, after, limit) =>
      [...store.entries.values()]
        .filter((e) => e.valueJson !== null && e.key.startsWith(prefix) && e.key > after)
        .sort((a, b) => (a.key < b.key ? -1 : 1))
        .slice(0, limit),
    write: async (mutation) => store.write(mutation),
    writeBatch: async (mutations) => mutations.map((mutation) => store.write(mutation)),
    writeRoom: () => store.room,
    storeHash: () => 'f'.repeat(64),
  };
}

function syncService(store: FakeStore, digest: BucketDigest): SyncService {
  return {
    nodeId: NODE_ID,
    digest,
    submit: async (mutations, options) => {
      store.submitted.push({ mutations, atomic: options?.atomic === true });
      return mutations.map(() => ({
        applied: true,
        version: { timestamp: 1, nodeId: NODE_ID },
        existed: false,
      }));
    },
    writeRoom: () => store.room,
    get: (key) => store.entries.get(key),
    bucketRows: async () => ({ json: '', next: null }),
    backlogFor: (nodeId) => (nodeId === PEER_ID ? 7 : 0),
    resyncing: () => false,
    resyncMoved: () => 0,
    clusterStatus: () => ({}),
  };
}

describe('HTTP routes over fake services', () => {
  let http: HttpServer;
  let url = '';
  let store = new FakeStore();
  const digest = new BucketDigest();

  before(async () => {
    const log = pino({ level: 'silent' });
    const authorizer = new Authorizer(
      { tokens: null, clusterSecret: null },
      { log, peerCertificateRequired: false, monoMs: () => performance.now() },
    );
    const options = {
      valueBytesMax: 1024,
      wallMs: () => WALL_MS,
      timestampMax: () => (WALL_MS + 10_000) * 1024,
      clockHigh: () => 42,
      bodyBudget: new BodyBudget(limits.bodyBytesInFlightMax),
    };
    // The services read `store` at call time, so each test can start from an empty one.
    const kv = new Proxy({} as KvService, {
      get: (_target, name) => kvService(store)[name as keyof KvService],
    });
    const sync = new Proxy({} as SyncService, {
      get: (_target, name) => syncService(store, digest)[name as keyof SyncService],
    });
    const routes = [
      ...kvRoutes(kv, options),
      ...batchRoutes(kv, options),
      ...syncRoutes(sync, options),
    ];
    http = createHttpServer(routes, log, {
      connectionsMax: 16,
      requestTimeoutMs: 5_000,
      authorizer,
      metrics: new Metrics(NODE_ID),
      tls: null,
    });
    await new Promise<void>((resolve) => http.server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(http.server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => http.server.close(() => resolve())));
  beforeEach(() => {
    store = new FakeStore();
  });

  test('GET /ping answers pong with the node headers', async () => {
    const answer = await getJson(`${url}/ping`);
    assert.equal(answer.status, 200);
    assert.equal(answer.text, '{"message":"pong"}');
    assert.equal(answer.headers['x-peerkv-node-id'], NODE_ID);
    assert.equal(answer.headers['x-peerkv-time-ms'], String(WALL_MS));
    assert.equal(answer.headers['x-peerkv-max-value-bytes'], '1024');
    assert.equal(answer.headers['x-peerkv-clock'], '42');
  });

  test('the seed routes store, read and hash', async () => {
    const stored = await postJson(`${url}/store`, { key: 'hello', value: 'world' });
    assert.equal(stored.status, 200);
    assert.equal((stored.body as { key: string }).key, 'hello');
    assert.equal(store.live('hello')?.valueJson, '"world"');
    const byQuery = await getJson(`${url}/store/key?key=hello`);
    assert.deepEqual(byQuery.body, { value: 'world' });
    const byBody = await getJson(`${url}/store/key`, { json: { key: 'hello' } });
    assert.deepEqual(byBody.body, { value: 'world' });
    const missing = await getJson(`${url}/store/key?key=nope`);
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.body, { error: 'Key not found', code: 'KEY_NOT_FOUND' });
    assert.deepEqual((await getJson(`${url}/store/hash`)).body, { hash: 'f'.repeat(64) });
  });

  test('PUT, GET and DELETE /kv/KEY, with the version as ETag', async () => {
    const put = await putJson(`${url}/kv/user%2F42`, { name: 'Ada' });
    assert.equal(put.status, 200);
    const version = (put.body as { version: string }).version;
    assert.equal(put.headers.etag, `"${version}"`);
    const read = await getJson(`${url}/kv/user%2F42`);
    assert.deepEqual(read.body, { key: 'user/42', value: { name: 'Ada' }, version });
    const removed = await del(`${url}/kv/user%2F42`);
    assert.equal(removed.status, 200);
    assert.equal((removed.body as { deleted: boolean }).deleted, true);
    assert.equal((removed.body as { existed: boolean }).existed, true);
    assert.equal((await getJson(`${url}/kv/user%2F42`)).status, 404);
  });

  test('a failed condition is 412 with the current version, and changes nothing', async () => {
    const first = await putJson(`${url}/kv/lock`, 'me', { headers: { 'if-none-match': '*' } });
    assert.equal(first.status, 200);
    const version = (first.body as { version: string }).version;
    const again = await putJson(`${url}/kv/lock`, 'you', { headers: { 'if-none-match': '*' } });
    assert.equal(again.status, 412);
    assert.equal((again.body as { code: string }).code, 'VERSION_MISMATCH');
    assert.equal((again.body as { current: string }).current, version);
    const stale = await putJson(`${url}/kv/lock`, 'you', {
      headers: { 'if-match': '"0000000000000a-00000000000000aa"' },
    });
    assert.equal(stale.status, 412);
    const swapped = await putJson(`${url}/kv/lock`, 'you', {
      headers: { 'if-match': `"${version}"` },
    });
    assert.equal(swapped.status, 200);
    assert.equal(store.live('lock')?.valueJson, '"you"');
  });

  test('bad input is a JSON 4xx and reaches no store', async () => {
    const cases = [
      [await httpRequest('POST', `${url}/store`, { rawBody: '{"key":' }), 400, 'BAD_JSON'],
      [await postJson(`${url}/store`, { key: 7, value: 1 }), 400, 'BAD_KEY'],
      [await postJson(`${url}/store`, { key: 'k'.repeat(1025), value: 1 }), 400, 'KEY_TOO_LARGE'],
      [await putJson(`${url}/kv/big`, 'x'.repeat(2_000)), 413, 'VALUE_TOO_LARGE'],
      [await putJson(`${url}/kv/c`, 1, { headers: { 'if-match': 'a, b' } }), 400, 'BAD_CONDITION'],
    ] as const;
    for (const [answer, status, code] of cases) {
      assert.equal(answer.status, status, answer.text);
      assert.equal((answer.body as { code: string }).code, code);
    }
    assert.equal(store.entries.size, 0, 'nothing was written');
  });

  test('unknown routes are 404 and wrong methods 405 with Allow', async () => {
    const unknown = await getJson(`${url}/nope`);
    assert.equal(unknown.status, 404);
    assert.equal((unknown.body as { code: string }).code, 'NOT_FOUND');
    const wrong = await httpRequest('PUT', `${url}/ping`);
    assert.equal(wrong.status, 405);
    assert.match(wrong.headers.allow ?? '', /GET/);
  });

  test('POST /batch writes all ops or names the one that is wrong', async () => {
    const ok = await postJson(`${url}/batch`, {
      ops: [
        { op: 'put', key: 'a', value: 1 },
        { op: 'delete', key: 'b' },
      ],
    });
    assert.equal(ok.status, 200);
    assert.equal((ok.body as { ops: unknown[] }).ops.length, 2);
    store = new FakeStore();
    const twice = await postJson(`${url}/batch`, {
      ops: [
        { op: 'put', key: 'a', value: 1 },
        { op: 'put', key: 'a', value: 2 },
      ],
    });
    assert.equal(twice.status, 400);
    assert.equal(store.entries.size, 0);
  });

  test('POST /replicate hands the entries to the store as one atomic job', async () => {
    const version = formatVersion({ timestamp: WALL_MS * 1024, nodeId: PEER_ID });
    const answer = await postJson(`${url}/replicate`, {
      from: PEER_ID,
      entries: [
        { key: 'a', value: { x: 1 }, version },
        { key: 'b', deleted: true, version },
      ],
    });
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { applied: 2, stale: 0 });
    assert.equal(store.submitted.length, 1);
    const job = store.submitted[0]!;
    assert.equal(job.atomic, true);
    assert.deepEqual(
      job.mutations.map((m) => (m.kind === 'remote' ? [m.entry.key, m.sourceNodeId] : m.kind)),
      [
        ['a', PEER_ID],
        ['b', PEER_ID],
      ],
    );
  });

  test('POST /replicate refuses a bad entry, or a version too far ahead, and applies none', async () => {
    const ahead = formatVersion({ timestamp: (WALL_MS + 60_000) * 1024, nodeId: PEER_ID });
    const now = formatVersion({ timestamp: WALL_MS * 1024, nodeId: PEER_ID });
    for (const entries of [
      [{ key: 'a', value: 1, version: now }, { key: 'b' }],
      [{ key: 'a', value: 1, version: ahead }],
    ]) {
      const answer = await postJson(`${url}/replicate`, { from: PEER_ID, entries });
      assert.equal(answer.status, 400, answer.text);
      assert.equal((answer.body as { code: string }).code, 'BAD_BATCH');
    }
    assert.equal(store.submitted.length, 0);
  });

  test('POST /replicate sheds with 503 and Retry-After when the write queue is nearly full', async () => {
    store.room = limits.replicateEntriesMax - 1;
    const answer = await postJson(`${url}/replicate`, { from: PEER_ID, entries: [] });
    assert.equal(answer.status, 503);
    assert.equal((answer.body as { code: string }).code, 'OVERLOADED');
    assert.equal(answer.headers['retry-after'], '1');
    assert.equal(store.submitted.length, 0);
  });

  test('GET /sync/digest answers the digest and our backlog toward the asker', async () => {
    const answer = await getJson(`${url}/sync/digest?from=${PEER_ID}`);
    assert.equal(answer.status, 200);
    const body = answer.body as { nodeId: string; root: string; groups: string[]; backlog: number };
    assert.equal(body.nodeId, NODE_ID);
    assert.equal(body.root, digest.root());
    assert.equal(body.groups.length, GROUPS);
    assert.equal(body.backlog, 7);
    const anonymous = await getJson(`${url}/sync/digest?from=not-an-id`);
    assert.equal((anonymous.body as { backlog: number }).backlog, 0);
  });

  test('POST /sync/fetch answers the stored entries of the asked keys, tombstones included', async () => {
    store.write({ kind: 'local', key: 'here', valueJson: '1' });
    store.entries.set('gone', {
      key: 'gone',
      valueJson: null,
      version: { timestamp: 5 * 1024, nodeId: NODE_ID },
    });
    const answer = await postJson(`${url}/sync/fetch`, { keys: ['here', 'gone', 'never'] });
    assert.equal(answer.status, 200);
    const body = answer.body as { rows: { key: string; deleted?: boolean }[]; served: number };
    assert.equal(body.served, 3);
    assert.deepEqual(
      body.rows.map((row) => [row.key, row.deleted === true]),
      [
        ['here', false],
        ['gone', true],
      ],
    );
  });
});
