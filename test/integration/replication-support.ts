// Shared by the replication-*.test.ts files: a ledger of acknowledged writes that predicts the
// converged content (last writer wins by version), full listings, hash and /cluster reads.
import assert from 'node:assert/strict';
import { del, getJson, type HttpOptions, type HttpResult, putJson } from '../helpers/http.ts';
import { type Cluster, type NodeProcess, waitFor } from '../helpers/node-process.ts';

/** Ping period and peer timeout most replication tests run with, in seconds. */
export const PINGFREQ_SECONDS = 0.25;
export const TIMEOUT_SECONDS = 1;
export const PING_PERIOD_MS = PINGFREQ_SECONDS * 1_000;

const LIST_PAGE_LIMIT = 1_000;
const LIST_PAGES_MAX = 1_000;
const DIFF_LINES_MAX = 12;
const PEER_VIEW_TIMEOUT_MS = 2_000;

export interface Item {
  readonly value: unknown;
  readonly version: string;
}

/** Key -> live value and version, as GET /kv lists it. */
export type Content = Map<string, Item>;

interface LedgerEntry {
  readonly value: unknown;
  readonly deleted: boolean;
  readonly version: string;
}

/**
 * Every acknowledged write, by key, keeping the one with the highest version. Versions sort as
 * strings in merge order (README), so once replication settles every node must hold exactly this.
 */
export class Ledger {
  readonly #latest = new Map<string, LedgerEntry>();
  #writes = 0;

  get writes(): number {
    return this.#writes;
  }

  record(key: string, value: unknown, deleted: boolean, version: string): void {
    this.#writes += 1;
    const known = this.#latest.get(key);
    if (known === undefined || version > known.version) {
      this.#latest.set(key, { value, deleted, version });
    }
  }

  /** The highest acknowledged version of `key`, if it was written. */
  versionOf(key: string): string | undefined {
    return this.#latest.get(key)?.version;
  }

  expected(): Content {
    const content: Content = new Map();
    for (const [key, entry] of this.#latest) {
      if (!entry.deleted) content.set(key, { value: entry.value, version: entry.version });
    }
    return content;
  }
}

function kvUrl(baseUrl: string, key: string): string {
  return `${baseUrl}/kv/${encodeURIComponent(key)}`;
}

/** The version in a 200 write answer; anything else fails the test with the answer. */
export function ackedVersion(result: HttpResult, what: string): string {
  assert.equal(result.status, 200, `${what}: ${result.text}`);
  const body = result.body as { version?: unknown };
  assert.equal(typeof body.version, 'string', `${what}: no version in ${result.text}`);
  return body.version as string;
}

export async function putKey(
  baseUrl: string,
  key: string,
  value: unknown,
  ledger: Ledger,
  opts: HttpOptions = {},
): Promise<string> {
  const version = ackedVersion(await putJson(kvUrl(baseUrl, key), value, opts), `PUT ${key}`);
  ledger.record(key, value, false, version);
  return version;
}

export async function deleteKey(baseUrl: string, key: string, ledger: Ledger): Promise<string> {
  const version = ackedVersion(await del(kvUrl(baseUrl, key)), `DELETE ${key}`);
  ledger.record(key, undefined, true, version);
  return version;
}

/** Runs `fn` over `items` with at most `limit` calls in flight; rejects on the first failure. */
export async function runBounded<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  assert.ok(limit >= 1);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const index = next;
      next += 1;
      await fn(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** Every live entry of a node, paging GET /kv through `next`. */
export async function listAll(baseUrl: string): Promise<Content> {
  const content: Content = new Map();
  let after = '';
  for (let page = 0; page < LIST_PAGES_MAX; page += 1) {
    const query = `limit=${LIST_PAGE_LIMIT}&after=${encodeURIComponent(after)}`;
    const result = await getJson(`${baseUrl}/kv?${query}`);
    assert.equal(result.status, 200, `GET /kv on ${baseUrl}: ${result.text}`);
    const body = result.body as { items: { key: string; value: unknown; version: string }[] };
    const next = (result.body as { next: unknown }).next;
    for (const item of body.items)
      content.set(item.key, { value: item.value, version: item.version });
    if (next === null) return content;
    assert.equal(typeof next, 'string', `bad next from ${baseUrl}: ${String(next)}`);
    after = next as string;
  }
  throw new Error(`GET /kv on ${baseUrl}: more than ${LIST_PAGES_MAX} pages`);
}

export async function storeHash(baseUrl: string): Promise<string> {
  const result = await getJson(`${baseUrl}/store/hash`);
  assert.equal(result.status, 200, `GET /store/hash on ${baseUrl}: ${result.text}`);
  return (result.body as { hash: string }).hash;
}

/** At most a few lines saying how `actual` differs from `expected` (empty when equal). */
export function contentDiff(actual: Content, expected: Content): string[] {
  const lines: string[] = [];
  const show = (value: unknown): string => JSON.stringify(value)?.slice(0, 60) ?? 'undefined';
  for (const [key, want] of expected) {
    const got = actual.get(key);
    if (got === undefined) lines.push(`missing ${key} (want ${want.version})`);
    else if (got.version !== want.version || !sameValue(got.value, want.value)) {
      lines.push(
        `differs ${key}: got ${got.version} ${show(got.value)}, want ${want.version} ${show(want.value)}`,
      );
    }
  }
  for (const [key, got] of actual) {
    if (!expected.has(key)) lines.push(`unexpected ${key} ${got.version} ${show(got.value)}`);
  }
  if (lines.length <= DIFF_LINES_MAX) return lines;
  return [...lines.slice(0, DIFF_LINES_MAX), `... and ${lines.length - DIFF_LINES_MAX} more`];
}

function sameValue(a: unknown, b: unknown): boolean {
  try {
    assert.deepStrictEqual(a, b);
    return true;
  } catch {
    // Not equal: deepStrictEqual throws, which is the answer here.
    return false;
  }
}

/** Polls until every node answers the same /store/hash; returns it. */
export async function waitSameHash(
  nodes: readonly NodeProcess[],
  timeoutMs: number,
  message = 'equal /store/hash on every node',
): Promise<string> {
  let last: string[] = [];
  try {
    return await waitFor(
      async () => {
        last = await Promise.all(nodes.map((node) => storeHash(node.url)));
        return last.every((hash) => hash === last[0]) ? last[0] : undefined;
      },
      { timeoutMs, message },
    );
  } catch (error) {
    const detail = nodes.map((node, i) => `${node.name}=${last[i]?.slice(0, 12)}`).join(' ');
    throw new Error(`${(error as Error).message} (${detail})`, { cause: error });
  }
}

/** Every node's full listing equals `expected` (version and value of each live key). */
export async function assertContent(nodes: readonly NodeProcess[], expected: Content) {
  for (const node of nodes) {
    const diff = contentDiff(await listAll(node.url), expected);
    assert.deepEqual(diff, [], `${node.name} content differs from the acknowledged writes`);
  }
}

/** Waits for equal hashes, then checks every node's content against the ledger. */
export async function assertConverged(
  nodes: readonly NodeProcess[],
  ledger: Ledger,
  timeoutMs: number,
): Promise<void> {
  await waitSameHash(nodes, timeoutMs);
  await assertContent(nodes, ledger.expected());
}

export interface ResyncNumbers {
  readonly runs: number;
  readonly entriesSent: number;
  readonly entriesReceived: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

/** One peer as GET /cluster shows it (the fields these tests read). */
export interface PeerView {
  readonly url: string;
  readonly nodeId: string | null;
  readonly state: string;
  readonly clockOffsetMs: number | null;
  readonly clockSkewed: boolean;
  readonly replication: {
    readonly pendingChanges: number;
    readonly entriesSent: number;
    readonly bytesSent: number;
    readonly cursor: number;
  };
  readonly resyncing: boolean;
  readonly lastResync: (Partial<ResyncNumbers> & { trigger: string; result?: string }) | null;
  readonly resyncTotals: ResyncNumbers;
}

export interface ClusterView {
  readonly node: { readonly nodeId: string; readonly seq: number; readonly hash: string };
  readonly peers: readonly PeerView[];
}

export async function clusterView(baseUrl: string): Promise<ClusterView> {
  const result = await getJson(`${baseUrl}/cluster`);
  assert.equal(result.status, 200, `GET /cluster on ${baseUrl}: ${result.text}`);
  return result.body as ClusterView;
}

/** How `fromUrl` sees the peer at `peerUrl`. */
export async function peerView(fromUrl: string, peerUrl: string): Promise<PeerView> {
  const view = await clusterView(fromUrl);
  const peer = view.peers.find((candidate) => candidate.url === peerUrl);
  assert.ok(peer !== undefined, `${fromUrl} /cluster lists no peer ${peerUrl}`);
  return peer;
}

/**
 * Waits until `fromUrl` has nothing unacknowledged toward `peerUrl` and no resync with it running,
 * so its counters include everything that has moved; returns that view.
 */
export function waitLinkIdle(fromUrl: string, peerUrl: string, timeoutMs: number) {
  return waitFor(
    async () => {
      const view = await peerView(fromUrl, peerUrl);
      return view.replication.pendingChanges === 0 && !view.resyncing ? view : undefined;
    },
    { timeoutMs, message: `${fromUrl} has delivered everything to ${peerUrl}` },
  );
}

/** Waits until every node's /cluster shows every other node up, under a known node id. */
export async function waitAllUp(nodes: readonly NodeProcess[], timeoutMs: number): Promise<void> {
  for (const node of nodes) {
    await waitFor(
      async () => {
        const view = await clusterView(node.url);
        const urls = nodes.filter((other) => other !== node).map((other) => other.url);
        return urls.every((url) =>
          view.peers.some((peer) => peer.url === url && peer.state === 'up' && peer.nodeId),
        );
      },
      { timeoutMs, message: `${node.name} sees every peer up` },
    );
  }
}

/** The node id a node's /ping announces. */
export async function pingNodeId(baseUrl: string): Promise<string> {
  const result = await getJson(`${baseUrl}/ping`);
  assert.equal(result.status, 200, `GET /ping on ${baseUrl}: ${result.text}`);
  const id = result.headers['x-peerkv-node-id'];
  assert.ok(id !== undefined && id.length > 0, `no X-Peerkv-Node-Id from ${baseUrl}`);
  return id;
}

/** Runs the test body; on failure prints every node's log tail and peer views before rethrowing. */
export async function withLogsOnFailure(cluster: Cluster, body: () => Promise<void>) {
  try {
    await body();
  } catch (error) {
    cluster.printLogTails(60);
    process.stderr.write(`${await peerViews(cluster.nodes)}\n`);
    throw error;
  }
}

/**
 * How each running node sees its peers (state, what it has not delivered, its sender's last
 * error, its resyncs): what a log tail cannot say about why a link stalled.
 */
async function peerViews(nodes: readonly NodeProcess[]): Promise<string> {
  const lines: string[] = [];
  for (const node of nodes.filter((candidate) => candidate.running)) {
    const result = await getJson(`${node.url}/cluster`, { timeoutMs: PEER_VIEW_TIMEOUT_MS }).catch(
      (error: unknown) => ({ status: 0, text: String(error), body: undefined }),
    );
    if (result.status !== 200) {
      lines.push(`# ${node.name} GET /cluster: ${result.status} ${result.text.slice(0, 200)}`);
      continue;
    }
    for (const peer of (result.body as ClusterView).peers) {
      const { url, state, replication, resyncing, lastResync } = peer;
      lines.push(
        `# ${node.name} sees ${url} ${state}: ${JSON.stringify({ replication, resyncing, lastResync })}`,
      );
    }
  }
  return lines.join('\n');
}
