// Checks that a node restarted on its data dir keeps everything (values, deletes, hash, node id),
// that SIGTERM exits 0 cleanly even mid-burst, and that every acknowledged write of a concurrent
// burst survives a kill -9 (after the last answer, or in the middle), with --sync full and normal;
// by driving one real node process over HTTP, stopping or killing it, and restarting it on the
// same port and data dir.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import {
  del,
  getJson,
  HttpRequestError,
  type HttpResult,
  postJson,
  putJson,
} from '../helpers/http.ts';
import { type Cluster, type NodeProcess, startCluster } from '../helpers/node-process.ts';
import {
  assertError,
  mapConcurrent,
  NODE_ID_PATTERN,
  readKey,
  storeHash,
  VERSION_PATTERN,
} from './node-support.ts';

const BURST_WRITES = 500;
const BURST_WIDTH = 50;
const KILL_WAIT_MS = 5_000;
const STOP_TIMEOUT_MS = 15_000;
/** How the harness heads each run in a node's log. */
const RUN_HEADER = /\n--- \S+ run \d+: /g;
const LIST_LIMIT_MAX = 1000;

interface Snapshot {
  hash: string;
  nodeId: string;
  items: { key: string; value: unknown; version: string }[];
}

/** The log of the node's latest run only. */
function lastRunLog(node: NodeProcess): string {
  const log = fs.readFileSync(node.logPath, 'utf8');
  const starts = [...log.matchAll(RUN_HEADER)].map((match) => match.index ?? 0);
  return log.slice(starts.at(-1) ?? 0);
}

/** pino lines at error level or above. */
function errorLogLines(log: string): string[] {
  return log.split('\n').filter((line) => /"level":(50|60)/.test(line));
}

async function nodeId(url: string): Promise<string> {
  const ping = await getJson(`${url}/ping`);
  assert.equal(ping.status, 200);
  const id = ping.headers['x-peerkv-node-id'] ?? '';
  assert.match(id, NODE_ID_PATTERN);
  return id;
}

/** Every live entry under `prefix` (at most 1000), in key order. */
async function listPrefix(url: string, prefix: string): Promise<Snapshot['items']> {
  const answer = await getJson(`${url}/kv?${new URLSearchParams({ prefix, limit: '1000' })}`);
  assert.equal(answer.status, 200, answer.text);
  const page = answer.body as { items: Snapshot['items']; next: string | null };
  assert.ok(page.items.length < LIST_LIMIT_MAX, 'the test keeps each prefix under one page');
  assert.equal(page.next, null);
  return page.items;
}

async function snapshot(url: string, prefix: string): Promise<Snapshot> {
  return {
    hash: await storeHash(url),
    nodeId: await nodeId(url),
    items: await listPrefix(url, prefix),
  };
}

type Operation =
  | { kind: 'post' | 'put'; key: string; value: unknown }
  | { kind: 'delete'; key: string };

/**
 * A burst of writes: puts of distinct keys, then overwrites and deletes of some of them. Operation
 * i runs on lane i % width, so the operations on one key run in order on one lane.
 */
function burstPlan(prefix: string): Operation[] {
  const nonce = randomUUID();
  const firsts = BURST_WRITES - 2 * BURST_WIDTH;
  const plan: Operation[] = [];
  for (let index = 0; index < firsts; index += 1) {
    const kind = index % 2 === 0 ? 'post' : 'put';
    plan.push({ kind, key: `${prefix}${index}`, value: { index, nonce, pad: 'p'.repeat(200) } });
  }
  // Overwrite the keys of the first lane round, delete those of the second.
  for (let index = 0; index < BURST_WIDTH; index += 1) {
    plan.push({
      kind: 'put',
      key: `${prefix}${index}`,
      value: { index, nonce, overwritten: true },
    });
  }
  for (let index = BURST_WIDTH; index < 2 * BURST_WIDTH; index += 1) {
    plan.push({ kind: 'delete', key: `${prefix}${index}` });
  }
  return plan;
}

/** What the store must hold under the prefix once every operation of `plan` was acknowledged. */
function expectedAfter(plan: readonly Operation[]): Map<string, unknown> {
  const expected = new Map<string, unknown>();
  for (const operation of plan) {
    if (operation.kind === 'delete') expected.delete(operation.key);
    else expected.set(operation.key, operation.value);
  }
  return expected;
}

function sendOperation(url: string, operation: Operation): Promise<HttpResult> {
  const target = `${url}/kv/${encodeURIComponent(operation.key)}`;
  if (operation.kind === 'post') {
    return postJson(`${url}/store`, { key: operation.key, value: operation.value });
  }
  return operation.kind === 'put' ? putJson(target, operation.value) : del(target);
}

async function send(url: string, operation: Operation): Promise<void> {
  const answer = await sendOperation(url, operation);
  assert.equal(answer.status, 200, `${operation.kind} ${operation.key}: ${answer.text}`);
}

/** Runs the burst on BURST_WIDTH lanes and kill -9s the node the moment the last answer is in. */
async function burstThenKill(node: NodeProcess, plan: readonly Operation[]): Promise<void> {
  const lanes = Array.from({ length: BURST_WIDTH }, (_, lane) =>
    plan.filter((_, index) => index % BURST_WIDTH === lane),
  );
  await mapConcurrent(lanes, BURST_WIDTH, async (operations) => {
    for (const operation of operations) await send(node.url, operation);
  });
  assert.ok(node.kill('SIGKILL'), 'the node was running at the last answer');
  const exit = await node.waitExit(KILL_WAIT_MS);
  assert.equal(exit.signal, 'SIGKILL');
}

type KeyState = { live: true; value: unknown } | { live: false };

/** The state of a key once `operation` (a put or a delete) has committed. */
function applied(operation: Operation): KeyState {
  return operation.kind === 'delete' ? { live: false } : { live: true, value: operation.value };
}

/**
 * Runs the burst on BURST_WIDTH lanes and sends `signal` to the node as soon as `acksBeforeSignal`
 * answers are in, with the other lanes' requests still in flight. Returns, per key, the states the
 * store may hold: the one after its acknowledged operations, or also the one after an operation
 * that got no answer (it may have committed without its answer getting out). After the signal a
 * request may only fail to connect, be cut off, or be refused with 503 SHUTTING_DOWN.
 */
async function burstInterrupted(
  node: NodeProcess,
  plan: readonly Operation[],
  acksBeforeSignal: number,
  signal: NodeJS.Signals,
): Promise<Map<string, KeyState[]>> {
  const allowed = new Map<string, KeyState[]>();
  let acks = 0;
  let signalled = false;
  const lanes = Array.from({ length: BURST_WIDTH }, (_, lane) =>
    plan.filter((_, index) => index % BURST_WIDTH === lane),
  );
  await mapConcurrent(lanes, BURST_WIDTH, async (operations) => {
    for (const operation of operations) {
      if (signalled) return;
      const prior = allowed.get(operation.key)?.[0] ?? { live: false };
      allowed.set(operation.key, [prior, applied(operation)]);
      let answer: HttpResult;
      try {
        answer = await sendOperation(node.url, operation);
      } catch (error) {
        if (signalled && error instanceof HttpRequestError) return;
        throw error;
      }
      if (answer.status !== 200 && signalled) {
        assertError(answer, 503, 'SHUTTING_DOWN', `${operation.kind} after ${signal}`);
        allowed.set(operation.key, [prior]);
        return;
      }
      assert.equal(answer.status, 200, `${operation.kind} ${operation.key}: ${answer.text}`);
      // Answered, even if only just before the signal: acknowledged, so it must be there.
      allowed.set(operation.key, [applied(operation)]);
      acks += 1;
      if (acks === acksBeforeSignal) {
        signalled = true;
        assert.ok(node.kill(signal));
      }
    }
  });
  assert.ok(signalled, `the burst ended before ${acksBeforeSignal} answers`);
  return allowed;
}

async function assertHoldsOneOf(
  url: string,
  prefix: string,
  allowed: Map<string, KeyState[]>,
): Promise<void> {
  const items = await listPrefix(url, prefix);
  const actual = new Map<string, KeyState>(
    items.map((item) => [item.key, { live: true, value: item.value }]),
  );
  for (const key of new Set([...allowed.keys(), ...actual.keys()])) {
    const state = actual.get(key) ?? { live: false };
    const choices = allowed.get(key) ?? [{ live: false }];
    const matches = choices.some((choice) => isDeepStrictEqual(state, choice));
    assert.ok(
      matches,
      `${key}: holds ${JSON.stringify(state)}, allowed ${JSON.stringify(choices)}`,
    );
  }
}

async function assertHolds(
  url: string,
  prefix: string,
  expected: Map<string, unknown>,
): Promise<void> {
  const items = await listPrefix(url, prefix);
  const actual = new Map(items.map((item) => [item.key, item.value]));
  const missing = [...expected.keys()].filter((key) => !actual.has(key));
  assert.deepEqual(missing, [], `${missing.length} acknowledged writes lost`);
  const resurrected = [...actual.keys()].filter((key) => !expected.has(key));
  assert.deepEqual(resurrected, [], `${resurrected.length} acknowledged deletes lost`);
  for (const [key, value] of expected) assert.deepEqual(actual.get(key), value, key);
}

describe('a node restarted on its data dir', () => {
  let cluster: Cluster | undefined;
  let node: NodeProcess;

  before(async () => {
    cluster = await startCluster({ nodes: 1 });
    node = cluster.node(0);
  });

  after(async () => {
    await cluster?.cleanup();
  });

  test('after SIGTERM (exit 0) keeps values, deletes, versions, hash and node id', async () => {
    const prefix = 'restart/';
    for (let index = 0; index < 20; index += 1) {
      const answer = await postJson(`${node.url}/store`, {
        key: `${prefix}${index}`,
        value: [index],
      });
      assert.equal(answer.status, 200, answer.text);
    }
    assert.equal(
      (await putJson(`${node.url}/kv/${encodeURIComponent(`${prefix}obj`)}`, { a: 1 })).status,
      200,
    );
    assert.equal(
      (await putJson(`${node.url}/kv/${encodeURIComponent(`${prefix}3`)}`, 'three')).status,
      200,
    );
    for (const index of [5, 6, 7]) {
      assert.equal(
        (await del(`${node.url}/kv/${encodeURIComponent(`${prefix}${index}`)}`)).status,
        200,
      );
    }
    const saved = await snapshot(node.url, prefix);
    assert.equal(saved.items.length, 18);

    const exit = await node.stop();
    assert.deepEqual(
      exit,
      { code: 0, signal: null },
      `SIGTERM ends the node with code 0\n${node.tail()}`,
    );
    await node.start();

    const afterRestart = await snapshot(node.url, prefix);
    assert.deepEqual(afterRestart, saved);
    assert.deepEqual((await readKey(node.url, `${prefix}3`)).body, { value: 'three' });
    assertError(await readKey(node.url, `${prefix}5`), 404, 'KEY_NOT_FOUND', 'a delete survives');

    // The clock survives too: a write after the restart orders after every write before it.
    const newest =
      saved.items
        .map((item) => item.version)
        .sort()
        .at(-1) ?? '';
    const later = await postJson(`${node.url}/store`, { key: `${prefix}after`, value: 1 });
    const version = (later.body as { version: string }).version;
    assert.match(version, VERSION_PATTERN);
    assert.ok(version > newest, `${version} after ${newest}`);
  });

  test('SIGTERM in the middle of a write burst finishes what it answered and exits 0', async () => {
    const prefix = 'graceful/';
    const allowed = await burstInterrupted(node, burstPlan(prefix), 200, 'SIGTERM');
    const exit = await node.waitExit(STOP_TIMEOUT_MS);
    assert.deepEqual(exit, { code: 0, signal: null }, node.tail());
    assert.deepEqual(errorLogLines(lastRunLog(node)), [], 'a clean stop logs no error');
    await node.start();
    await assertHoldsOneOf(node.url, prefix, allowed);
  });

  test('a second SIGTERM restart in a row changes nothing either', async () => {
    const hash = await storeHash(node.url);
    const id = await nodeId(node.url);
    assert.deepEqual(await node.stop(), { code: 0, signal: null });
    await node.start();
    assert.equal(await storeHash(node.url), hash);
    assert.equal(await nodeId(node.url), id);
  });

  // Last in this describe: it leaves the node stopped.
  test('SIGTERM right after start exits 0 and logs no error', async () => {
    assert.deepEqual(await node.stop(), { code: 0, signal: null });
    await node.start();
    assert.deepEqual(await node.stop(), { code: 0, signal: null }, node.tail());
    assert.deepEqual(errorLogLines(lastRunLog(node)), [], 'a clean stop logs no error');
  });
});

describe('acknowledged writes survive kill -9', () => {
  let cluster: Cluster | undefined;
  let node: NodeProcess;

  before(async () => {
    cluster = await startCluster({ nodes: 1 });
    node = cluster.node(0);
  });

  after(async () => {
    await cluster?.cleanup();
  });

  const plans = new Map<string, Operation[]>();

  for (const sync of ['full', 'normal'] as const) {
    test(`with --sync ${sync}: ${BURST_WRITES} concurrent writes, kill -9, restart`, async () => {
      await node.restart({ extraArgs: ['--sync', sync] });
      const id = await nodeId(node.url);
      const prefix = `burst-${sync}/`;
      const plan = burstPlan(prefix);
      plans.set(prefix, plan);
      await burstThenKill(node, plan);
      await node.start();
      assert.equal(await nodeId(node.url), id, 'same node id after the crash');
      await assertHolds(node.url, prefix, expectedAfter(plan));
      // The digest was committed with the rows: a second restart agrees with the first.
      const hash = await storeHash(node.url);
      assert.deepEqual(await node.stop(), { code: 0, signal: null });
      await node.start();
      assert.equal(await storeHash(node.url), hash);
    });
  }

  test('with --sync full: kill -9 in the middle of a burst keeps every write answered before it', async () => {
    await node.restart({ extraArgs: ['--sync', 'full'] });
    const prefix = 'midway/';
    const allowed = await burstInterrupted(node, burstPlan(prefix), 300, 'SIGKILL');
    assert.equal((await node.waitExit(KILL_WAIT_MS)).signal, 'SIGKILL');
    await node.start();
    await assertHoldsOneOf(node.url, prefix, allowed);
  });

  test('the first burst is still whole after the later crashes', async () => {
    const plan = plans.get('burst-full/');
    assert.ok(plan !== undefined, 'the --sync full burst ran');
    await assertHolds(node.url, 'burst-full/', expectedAfter(plan));
  });
});
