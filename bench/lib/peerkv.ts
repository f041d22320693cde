/**
 * peerkv nodes for the benchmarks: start one (or a cluster) on free loopback
 * ports with temp data dirs, bulk-load it through POST /replicate, read its
 * /cluster status, SIGKILL and restart it, and wait until the hashes agree.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import type { BaseContext } from './bench-context.ts';
import { BenchError } from './bench-error.ts';
import { findFreePort, type ServerProcess } from './processes.ts';
import { existingKeyName } from './request-generators.ts';

/** The node id bulk-loaded entries are stamped with (no real node has it). */
export const bulkNodeId = '00000000000000b0';
/** Entries per POST /replicate: peerkv accepts at most 5,000 (src/limits.ts). */
const bulkEntriesPerRequest = 5_000;
/** Bulk requests in flight to one node (two keep its write queue busy without 503s). */
const bulkRequestsInFlight = 2;
/** One HTTP call to a node: status, digest and bulk requests. */
const callTimeoutMs = 120_000;
/** How often hashes and /cluster are polled while waiting for convergence. */
const pollIntervalMs = 10;
/** Time a node gets to come up on a data dir holding millions of keys. */
const readyDeadlineMs = 120_000;

export interface NodeOptions {
  /** Seconds between peer pings; short in the benchmarks so recoveries are seen quickly. */
  pingfreqSec: number;
  timeoutSec: number;
  logLevel?: string;
  /** Anything else, e.g. ['--sync', 'normal']. */
  extraArgs?: readonly string[];
}

export interface PeerkvNode {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  dataDir: string;
  readonly peers: readonly string[];
  readonly options: NodeOptions;
  server: ServerProcess;
}

export interface StartTiming {
  /** From spawn to the first 2xx of GET /ping. */
  readyMs: number;
  /** From SIGTERM to exit (null if the node was not running); SIGKILL after `stopGraceMs`. */
  stopMs: number | null;
}

function nodeArgs(node: Omit<PeerkvNode, 'server'>, mainFile: string): string[] {
  const args = [
    mainFile,
    'node',
    '--port',
    String(node.port),
    '--data-dir',
    node.dataDir,
    '--pingfreq',
    String(node.options.pingfreqSec),
    '--timeout',
    String(node.options.timeoutSec),
    '--log-level',
    node.options.logLevel ?? 'warn',
    ...(node.options.extraArgs ?? []),
  ];
  if (node.peers.length > 0) args.push('--peers', node.peers.join(','));
  return args;
}

/** Spawns the node's process and waits for GET /ping; returns the spawn-to-ready time. */
async function spawnNode(
  ctx: BaseContext,
  node: Omit<PeerkvNode, 'server'>,
): Promise<{ server: ServerProcess; readyMs: number }> {
  // What a user runs: the bin, which runs dist/ (bench/run.ts builds it first when stale).
  const mainFile = join(ctx.repoDir, 'bin', 'peerkv.js');
  const [file, ...args] = nodeArgs(node, mainFile);
  const startedMs = performance.now();
  const server = await ctx.processes.startServer({
    name: node.name,
    file: file!,
    args,
    readyUrl: `${node.url}/ping`,
    readyDeadlineMs,
    readyProbeIntervalMs: 5,
    cwd: ctx.repoDir,
  });
  return { server, readyMs: performance.now() - startedMs };
}

/**
 * Starts `count` nodes at once, each peered with all the others (one --peers
 * list for all, as the README shows), each on a fresh temp data dir.
 */
export async function startCluster(
  ctx: BaseContext,
  name: string,
  count: number,
  options: NodeOptions,
): Promise<PeerkvNode[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await findFreePort();
    if (!ports.includes(port)) ports.push(port);
  }
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  const specs = await Promise.all(
    ports.map(async (port, index) => ({
      name: count === 1 ? name : `${name}-${index + 1}`,
      port,
      url: urls[index]!,
      dataDir: await ctx.processes.makeTempDir(`${name}-${index + 1}`),
      peers: count === 1 ? [] : urls,
      options,
    })),
  );
  return Promise.all(
    specs.map(async (spec) => ({ ...spec, server: (await spawnNode(ctx, spec)).server })),
  );
}

export async function startSingleNode(
  ctx: BaseContext,
  name: string,
  options: NodeOptions,
): Promise<PeerkvNode> {
  const [node] = await startCluster(ctx, name, 1, options);
  return node!;
}

/** SIGKILL, as a crash would; resolves once the process is gone. */
export async function killNode(node: PeerkvNode): Promise<void> {
  if (!node.server.isRunning()) return;
  node.server.child.kill('SIGKILL');
  await node.server.exited;
}

/** Stops the node (SIGTERM), starts it again on its data dir; returns spawn-to-ready. */
export async function restartNode(
  ctx: BaseContext,
  node: PeerkvNode,
  change: {
    wipe?: boolean;
    options?: Partial<NodeOptions>;
    peers?: readonly string[];
    stopGraceMs?: number;
  } = {},
): Promise<StartTiming & { node: PeerkvNode }> {
  let stopMs: number | null = null;
  if (node.server.isRunning()) {
    const stoppingAt = performance.now();
    await ctx.processes.stop(node.server, change.stopGraceMs);
    stopMs = performance.now() - stoppingAt;
  }
  if (change.wipe) await rm(node.dataDir, { recursive: true, force: true });
  const spec = {
    ...node,
    options: { ...node.options, ...change.options },
    peers: change.peers ?? node.peers,
  };
  const { server, readyMs } = await spawnNode(ctx, spec);
  const restarted: PeerkvNode = { ...spec, server };
  return { node: restarted, readyMs, stopMs };
}

/** One JSON call to a node; throws on a non-2xx answer. */
export async function callJson(
  url: string,
  method: 'GET' | 'POST' = 'GET',
  body?: string,
): Promise<unknown> {
  const response = await request(url, {
    method,
    body,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    headersTimeout: callTimeoutMs,
    bodyTimeout: callTimeoutMs,
  });
  const text = await response.body.text();
  if (response.statusCode < 200 || response.statusCode > 299) {
    throw new BenchError(
      'LOAD_FAILED',
      `${method} ${url} answered ${response.statusCode}: ${text.slice(0, 300)}`,
    );
  }
  return JSON.parse(text) as unknown;
}

export interface ResyncCounters {
  result?: string;
  entriesSent: number;
  entriesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  durationMs?: number;
  error?: string;
}

export interface PeerStatus {
  url: string;
  nodeId: string | null;
  state: string;
  resyncing: boolean;
  replication: {
    pendingChanges: number;
    lagMsP50: number | null;
    lagMsP99: number | null;
    entriesSent: number;
    bytesSent: number;
    batchesSent: number;
    failures: number;
  };
  lastResync: ResyncCounters | null;
  resyncTotals: ResyncCounters & { runs: number };
}

export interface ClusterStatus {
  node: { nodeId: string; entries: number; hash: string; seq: number; writeQueue: number };
  peers: PeerStatus[];
}

export async function clusterStatus(node: PeerkvNode): Promise<ClusterStatus> {
  return (await callJson(`${node.url}/cluster`)) as ClusterStatus;
}

export async function storeHash(node: PeerkvNode): Promise<string> {
  return ((await callJson(`${node.url}/store/hash`)) as { hash: string }).hash;
}

/** Polls until every node answers the same /store/hash; returns how long that took (ms). */
export async function waitForEqualHashes(
  nodes: readonly PeerkvNode[],
  deadlineMs: number,
): Promise<number> {
  const startedMs = performance.now();
  let hashes: string[] = [];
  while (performance.now() - startedMs < deadlineMs) {
    hashes = await Promise.all(nodes.map(storeHash));
    if (hashes.every((hash) => hash === hashes[0])) return performance.now() - startedMs;
    await sleep(pollIntervalMs);
  }
  throw new BenchError(
    'NOT_READY',
    `hashes of ${nodes.map((n) => n.name).join(', ')} still differ after ${deadlineMs} ms: ${hashes.join(' ')}`,
  );
}

/** Polls until every node sees every peer up (replication flows only then). */
export async function waitForPeersUp(
  nodes: readonly PeerkvNode[],
  deadlineMs: number,
): Promise<void> {
  const startedMs = performance.now();
  while (performance.now() - startedMs < deadlineMs) {
    const statuses = await Promise.all(nodes.map(clusterStatus));
    if (statuses.every((s) => s.peers.every((p) => p.state === 'up'))) return;
    await sleep(pollIntervalMs * 5);
  }
  throw new BenchError('NOT_READY', `peers not all up after ${deadlineMs} ms`);
}

/**
 * Polls until no node has changes waiting for a peer among `nodes` and no
 * resync runs (peers outside `nodes`, e.g. one that is down, are ignored).
 */
export async function waitForQuiet(
  nodes: readonly PeerkvNode[],
  deadlineMs: number,
): Promise<void> {
  const startedMs = performance.now();
  const urls = new Set(nodes.map((n) => n.url));
  while (performance.now() - startedMs < deadlineMs) {
    const statuses = await Promise.all(nodes.map(clusterStatus));
    const quiet = statuses.every((s) =>
      s.peers
        .filter((p) => urls.has(p.url))
        .every((p) => p.replication.pendingChanges === 0 && !p.resyncing),
    );
    if (quiet) return;
    await sleep(pollIntervalMs * 5);
  }
  throw new BenchError('NOT_READY', `replication still busy after ${deadlineMs} ms`);
}

export interface BulkData {
  keyCount: number;
  /** Bytes of each value's string (JSON text is 2 more, for the quotes). */
  valueBytes: number;
  /** HLC timestamp of key 0; key i gets base + i. The same data on every node gives the same hash. */
  baseTimestamp: number;
}

/** A data set an hour in the past (so no node's clock runs behind it). */
export function makeBulkData(keyCount: number, valueBytes = 100): BulkData {
  return { keyCount, valueBytes, baseTimestamp: (Date.now() - 3_600_000) * 1024 };
}

/** Wire bytes of one bulk entry as peerkv sends it (key, JSON value, version): the store's size. */
export function bulkEntryBytes(data: BulkData, index: number): number {
  const key = existingKeyName(index);
  return `{"key":"${key}","value":"${'x'.repeat(data.valueBytes)}","version":"00000000000000-${bulkNodeId}"},`
    .length;
}

/** The store's size on the wire: every entry as a resync would send it. */
export function bulkStoreBytes(data: BulkData): number {
  // Keys k0..k(N-1): sum their lengths by decade instead of building N strings
  // (`fixed` is an entry's length without the key's digits).
  const fixed = bulkEntryBytes(data, 0) - 1;
  let total = 0;
  for (let digits = 1, low = 0; low < data.keyCount; digits += 1, low = 10 ** (digits - 1)) {
    const high = Math.min(data.keyCount, 10 ** digits);
    total += (high - low) * (fixed + digits);
  }
  return total;
}

function bulkBody(data: BulkData, first: number, count: number): string {
  const value = JSON.stringify(`${'x'.repeat(data.valueBytes)}`);
  const parts: string[] = new Array(count);
  for (let i = 0; i < count; i += 1) {
    const index = first + i;
    const version = `${(data.baseTimestamp + index).toString(16).padStart(14, '0')}-${bulkNodeId}`;
    parts[i] = `{"key":"${existingKeyName(index)}","value":${value},"version":"${version}"}`;
  }
  return `{"from":"${bulkNodeId}","entries":[${parts.join(',')}]}`;
}

/**
 * Loads keys existingKeyName(first .. keyCount-1) into every node through
 * POST /replicate, 5,000 entries a request; each body is built once and sent
 * to all nodes at once. A node does not forward what it receives this way, so
 * every node is loaded. Returns ms.
 */
export async function bulkLoad(
  nodes: readonly PeerkvNode[],
  data: BulkData,
  firstIndex = 0,
): Promise<number> {
  const startedMs = performance.now();
  const chunks: { first: number; count: number }[] = [];
  for (let first = firstIndex; first < data.keyCount; first += bulkEntriesPerRequest) {
    chunks.push({ first, count: Math.min(bulkEntriesPerRequest, data.keyCount - first) });
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < chunks.length) {
      const chunk = chunks[next++]!;
      const body = bulkBody(data, chunk.first, chunk.count);
      await Promise.all(
        nodes.map(async (node) => {
          const answer = (await callJson(`${node.url}/replicate`, 'POST', body)) as {
            applied: number;
          };
          if (answer.applied !== chunk.count) {
            throw new BenchError(
              'LOAD_FAILED',
              `${node.name}: bulk load applied ${answer.applied} of ${chunk.count}`,
            );
          }
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: bulkRequestsInFlight }, worker));
  return performance.now() - startedMs;
}

/** Writes `count` distinct new keys through POST /store, one by one, a few at a time. */
export async function writeKeys(node: PeerkvNode, prefix: string, count: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const key = `${prefix}-${next++}`;
      await callJson(`${node.url}/store`, 'POST', JSON.stringify({ key, value: 'y'.repeat(100) }));
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

export function connectionsText(connections: number): string {
  return connections === 1 ? '1 connection' : `${connections} connections`;
}

/**
 * Resolves once the node's output holds a line containing `text` (already
 * printed, or printed later), with the time it was seen (performance.now()).
 */
export function waitForOutput(
  server: ServerProcess,
  text: string,
  signal?: AbortSignal,
): Promise<number> {
  if (server.outputTail().includes(text)) return Promise.resolve(performance.now());
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer): void => {
      // Keep a little of the previous chunk: the text may straddle two.
      seen = seen.slice(-text.length) + chunk.toString('utf8');
      if (seen.includes(text)) finish(() => resolve(performance.now()));
    };
    const onAbort = (): void =>
      finish(() => reject(new BenchError('NOT_READY', `no "${text}" from ${server.name}`)));
    const finish = (settle: () => void): void => {
      server.child.stdout?.off('data', onData);
      signal?.removeEventListener('abort', onAbort);
      settle();
    };
    server.child.stdout?.on('data', onData);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A progress line on stderr for the steps between load runs (start-ups, recoveries). */
export function logStep(text: string): void {
  process.stderr.write(`[bench]   ${text}\n`);
}
