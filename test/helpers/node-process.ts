// Start, stop, kill and restart real peerkv node processes on free loopback ports, alone or as a
// cluster in a temp dir, so integration and fault tests drive the real program.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { getJson, sleep } from './http.ts';

export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MAIN_ENTRY = path.join(PROJECT_ROOT, 'src', 'main.ts');

// Generous: a loaded 2-core machine can take many seconds to compile and start a node; a
// passing run never waits for it.
const READY_TIMEOUT_MS_DEFAULT = 40_000;
const READY_POLL_INTERVAL_MS = 50;
const PING_TIMEOUT_MS = 1_000;
const STOP_TIMEOUT_MS_DEFAULT = 10_000;
const KILL_WAIT_MS = 5_000;
const PINGFREQ_SECONDS_DEFAULT = 0.2;
const TIMEOUT_SECONDS_DEFAULT = 1;
const LOG_TAIL_LINES_DEFAULT = 40;
const LOG_TAIL_BYTES_MAX = 64 * 1024;
const FREE_PORTS_MAX = 64;
const CLUSTER_NODES_MAX = 16;
const WAIT_INTERVAL_MS_DEFAULT = 50;
const INSPECT_CHARS_MAX = 2_000;

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

// Process-wide by nature: the exit hook has to reach every child that any test started, even when
// a test failed before its after() could run.
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function killLiveChildren(): void {
  for (const child of liveChildren) child.kill('SIGKILL');
  liveChildren.clear();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', killLiveChildren);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killLiveChildren();
      // Re-raise for the default action unless someone else (e.g. the test runner) handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

/** A free 127.0.0.1 port (free when checked: bind it soon). */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  assert.ok(port !== undefined);
  return port;
}

/** `count` distinct free ports: all are held at once before any is released. */
export async function freePorts(count: number): Promise<number[]> {
  assert.ok(Number.isInteger(count) && count >= 1 && count <= FREE_PORTS_MAX, `bad count ${count}`);
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i += 1) {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
      const address = server.address();
      assert.ok(address !== null && typeof address === 'object');
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

export interface WaitForOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** What was awaited, for the error. */
  message?: string;
}

type Falsy = false | 0 | 0n | '' | null | undefined;

/**
 * Polls `fn` until it returns a truthy value, and returns that value. Errors thrown by `fn` count
 * as "not yet". Each attempt is bounded by the deadline, so a hung attempt cannot hang the test.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  options: WaitForOptions,
): Promise<Exclude<T, Falsy>> {
  const { timeoutMs, intervalMs = WAIT_INTERVAL_MS_DEFAULT, message = 'condition' } = options;
  assert.ok(timeoutMs > 0 && intervalMs > 0, 'timeoutMs and intervalMs must be positive');
  const deadline = performance.now() + timeoutMs;
  let last: { value: unknown } | { error: unknown } | undefined;
  while (performance.now() < deadline) {
    try {
      const value = await withDeadline(Promise.resolve().then(fn), deadline - performance.now());
      // Truthiness does not narrow a type parameter; the check above is what the cast states.
      if (value) return value as Exclude<T, Falsy>;
      last = { value };
    } catch (error) {
      last = { error };
    }
    await sleep(Math.min(intervalMs, Math.max(0, deadline - performance.now())));
  }
  const detail =
    last === undefined
      ? 'never evaluated'
      : 'error' in last
        ? `last error: ${brief(last.error)}`
        : `last value: ${brief(last.value)}`;
  const cause = last !== undefined && 'error' in last ? last.error : undefined;
  throw new Error(`waitFor timed out after ${timeoutMs} ms: ${message}; ${detail}`, { cause });
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`attempt still running at the deadline`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

function brief(value: unknown): string {
  const text = inspect(value, { depth: 4, breakLength: Number.POSITIVE_INFINITY });
  return text.length > INSPECT_CHARS_MAX ? `${text.slice(0, INSPECT_CHARS_MAX)}...` : text;
}

export interface NodeProcessOptions {
  port: number;
  dataDir: string;
  /** Base URLs of every node, this one included (the node skips itself). */
  peers: readonly string[];
  /** `--pingfreq`, in seconds (fractions allowed). */
  pingfreq?: number;
  /** `--timeout`, in seconds (fractions allowed). */
  timeout?: number;
  extraArgs?: readonly string[];
  /** Added to process.env, e.g. { PEERKV_CLOCK_OFFSET_MS: '5000' }. */
  env?: Readonly<Record<string, string>>;
  /** stdout and stderr of every run, appended; defaults to `<dataDir>.log`. */
  logPath?: string;
  readyTimeoutMs?: number;
  /** Script to run instead of src/main.ts (for testing these helpers). */
  entry?: string;
  name?: string;
}

/** One peerkv node process: spawn, wait for /ping, signal, stop, restart on the same port/dir. */
export class NodeProcess {
  readonly port: number;
  readonly dataDir: string;
  readonly logPath: string;
  readonly name: string;
  private readonly options: NodeProcessOptions;
  private env: Readonly<Record<string, string>>;
  private extraArgs: readonly string[];
  private child: ChildProcess | undefined;
  private exited: Promise<ExitInfo> | undefined;
  private lastExit: ExitInfo | undefined;
  private runs = 0;

  constructor(options: NodeProcessOptions) {
    assert.ok(Number.isInteger(options.port) && options.port > 0, `bad port ${options.port}`);
    this.options = options;
    this.port = options.port;
    this.dataDir = options.dataDir;
    this.logPath = options.logPath ?? `${options.dataDir}.log`;
    this.name = options.name ?? `node:${options.port}`;
    this.env = options.env ?? {};
    this.extraArgs = options.extraArgs ?? [];
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.lastExit === undefined;
  }

  /** How the last run ended; undefined while running or before the first run. */
  get exitInfo(): ExitInfo | undefined {
    return this.lastExit;
  }

  get exitCode(): number | null | undefined {
    return this.lastExit?.code;
  }

  get exitSignal(): NodeJS.Signals | null | undefined {
    return this.lastExit?.signal;
  }

  args(): string[] {
    return [
      '--import',
      'tsx',
      this.options.entry ?? MAIN_ENTRY,
      'node',
      '--port',
      String(this.port),
      '--data-dir',
      this.dataDir,
      '--peers',
      this.options.peers.join(','),
      '--pingfreq',
      String(this.options.pingfreq ?? PINGFREQ_SECONDS_DEFAULT),
      '--timeout',
      String(this.options.timeout ?? TIMEOUT_SECONDS_DEFAULT),
      ...this.extraArgs,
    ];
  }

  /** Spawns the process without waiting for readiness (for tests that expect it to fail). */
  spawn(): void {
    assert.ok(!this.running, `${this.name} is already running`);
    this.runs += 1;
    const args = this.args();
    const logFd = fs.openSync(this.logPath, 'a');
    let child: ChildProcess;
    try {
      fs.writeSync(
        logFd,
        `\n--- ${new Date().toISOString()} run ${this.runs}: ${args.join(' ')}\n`,
      );
      const env: NodeJS.ProcessEnv = { ...process.env, ...this.env };
      // Set by node --test for its own children; the node under test is not one of them.
      delete env.NODE_TEST_CONTEXT;
      child = spawn(process.execPath, args, {
        cwd: PROJECT_ROOT,
        env,
        stdio: ['ignore', logFd, logFd],
      });
    } finally {
      fs.closeSync(logFd); // the child holds its own copy
    }
    // A child left running by a failed test must not keep the test process alive; the exit hook
    // kills it when that process ends. Every wait on the child has its own timer.
    child.unref();
    this.track(child);
  }

  private track(child: ChildProcess): void {
    installExitHook();
    this.child = child;
    this.lastExit = undefined;
    liveChildren.add(child);
    this.exited = new Promise<ExitInfo>((resolve) => {
      const done = (info: ExitInfo): void => {
        liveChildren.delete(child);
        if (this.child === child) this.lastExit = info;
        resolve(info);
      };
      child.once('exit', (code, signal) => done({ code, signal }));
      // 'error' without a pid means the spawn itself failed and no 'exit' will follow; with a pid
      // it is a failed kill(), which waitExit() and stop() already cover with their deadlines.
      child.on('error', (err) => {
        if (child.pid === undefined) {
          fs.appendFileSync(this.logPath, `spawn failed: ${err.message}\n`);
          done({ code: null, signal: null });
        }
      });
    });
  }

  /** Polls GET /ping until 200 {"message":"pong"}; fails at once with the log tail on exit. */
  async waitReady(
    timeoutMs = this.options.readyTimeoutMs ?? READY_TIMEOUT_MS_DEFAULT,
  ): Promise<void> {
    assert.ok(this.exited !== undefined, `${this.name} was never spawned`);
    const exited = this.exited;
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const pingMs = Math.max(1, Math.min(PING_TIMEOUT_MS, deadline - performance.now()));
      const outcome = await Promise.race([this.pingOnce(pingMs), exited]);
      if (typeof outcome === 'object') {
        throw new Error(
          `${this.name} exited before ready (${describeExit(outcome)})\n${this.tail()}`,
        );
      }
      if (outcome) return;
      await sleep(READY_POLL_INTERVAL_MS);
    }
    throw new Error(`${this.name} not ready after ${timeoutMs} ms\n${this.tail()}`);
  }

  private async pingOnce(timeoutMs: number): Promise<boolean> {
    try {
      const response = await getJson(`${this.url}/ping`, { timeoutMs });
      const body = response.body;
      return (
        response.status === 200 &&
        typeof body === 'object' &&
        body !== null &&
        'message' in body &&
        body.message === 'pong'
      );
    } catch {
      // Refused or timed out: the node is still starting; waitReady's deadline bounds the wait.
      return false;
    }
  }

  /** Spawns and waits for readiness; a node that does not become ready is killed. */
  async start(): Promise<void> {
    this.spawn();
    try {
      await this.waitReady();
    } catch (err) {
      if (this.running) {
        this.kill('SIGKILL');
        await this.waitExit(KILL_WAIT_MS);
      }
      throw err;
    }
  }

  /** Sends a signal; returns false if the process was not running. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): boolean {
    if (!this.running || this.child === undefined) return false;
    return this.child.kill(signal);
  }

  async waitExit(timeoutMs = STOP_TIMEOUT_MS_DEFAULT): Promise<ExitInfo> {
    assert.ok(this.exited !== undefined, `${this.name} was never spawned`);
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`${this.name} did not exit within ${timeoutMs} ms\n${this.tail()}`));
      }, timeoutMs);
    });
    return Promise.race([this.exited, expired]).finally(() => clearTimeout(timer));
  }

  /** SIGTERM, then SIGKILL if it has not exited by the deadline; returns how it ended. */
  async stop(timeoutMs = STOP_TIMEOUT_MS_DEFAULT): Promise<ExitInfo> {
    if (!this.running) {
      assert.ok(this.lastExit !== undefined, `${this.name} was never spawned`);
      return this.lastExit;
    }
    this.kill('SIGTERM');
    try {
      return await this.waitExit(timeoutMs);
    } catch {
      // Ignored SIGTERM for too long: force it. The caller sees signal 'SIGKILL' in the result.
      this.kill('SIGKILL');
      return this.waitExit(KILL_WAIT_MS);
    }
  }

  /**
   * Stops the node (gracefully, or with `signal`, e.g. 'SIGKILL' for kill -9) and starts it again
   * on the same port and data dir, optionally with other extra args or env.
   */
  async restart(opts: RestartOptions = {}): Promise<void> {
    if (this.running) {
      if (opts.signal === undefined) await this.stop();
      else {
        this.kill(opts.signal);
        await this.waitExit(KILL_WAIT_MS);
      }
    }
    if (opts.env !== undefined) this.env = opts.env;
    if (opts.extraArgs !== undefined) this.extraArgs = opts.extraArgs;
    await this.start();
  }

  /** The last `lines` lines of this node's log (all runs), headed by its name. */
  tail(lines = LOG_TAIL_LINES_DEFAULT): string {
    return `--- ${this.name} log (${this.logPath}), last ${lines} lines ---\n${readTail(this.logPath, lines)}`;
  }
}

export interface RestartOptions {
  signal?: NodeJS.Signals;
  env?: Readonly<Record<string, string>>;
  extraArgs?: readonly string[];
}

function describeExit(info: ExitInfo): string {
  return info.signal !== null ? `signal ${info.signal}` : `code ${info.code}`;
}

function readTail(filePath: string, lines: number): string {
  let fd: number;
  try {
    fd = fs.openSync(filePath, 'r');
  } catch (err) {
    return `(no log: ${err instanceof Error ? err.message : String(err)})`;
  }
  try {
    const size = fs.fstatSync(fd).size;
    const length = Math.min(size, LOG_TAIL_BYTES_MAX);
    const buffer = Buffer.alloc(length);
    fs.readSync(fd, buffer, 0, length, size - length);
    return buffer.toString('utf8').split('\n').slice(-lines).join('\n');
  } finally {
    fs.closeSync(fd);
  }
}

/** A value for every node, or a function of the node's index. */
export type PerNode<T> = T | ((index: number) => T);

export interface ClusterOptions {
  /** How many nodes (default 3). */
  nodes?: number;
  /** `--pingfreq` for every node, in seconds. */
  pingfreq?: number;
  /** `--timeout` for every node, in seconds. */
  timeout?: number;
  extraArgs?: PerNode<readonly string[]>;
  env?: PerNode<Readonly<Record<string, string>>>;
  /** Ports to use (one per node); picked with freePorts() if absent. */
  ports?: readonly number[];
  /** The URL node `from` uses for peer `to` (e.g. a FaultProxy in front of `to`); direct if absent. */
  peerUrlFor?: (from: number, to: number, ports: readonly number[]) => string;
  readyTimeoutMs?: number;
  entry?: string;
}

function perNode<T>(value: PerNode<T> | undefined, index: number): T | undefined {
  return typeof value === 'function' ? (value as (index: number) => T)(index) : value;
}

/** Nodes started together in one temp dir; cleanup() kills them and removes the dir. */
export class Cluster {
  private cleaned = false;

  constructor(
    readonly dir: string,
    readonly nodes: readonly NodeProcess[],
  ) {}

  node(index: number): NodeProcess {
    const node = this.nodes[index];
    assert.ok(node !== undefined, `no node ${index} in a cluster of ${this.nodes.length}`);
    return node;
  }

  get urls(): string[] {
    return this.nodes.map((node) => node.url);
  }

  get ports(): number[] {
    return this.nodes.map((node) => node.port);
  }

  logTails(lines = LOG_TAIL_LINES_DEFAULT): string {
    return this.nodes.map((node) => node.tail(lines)).join('\n');
  }

  /** Prints every node's log tail to stderr: call it when a test fails. */
  printLogTails(lines = LOG_TAIL_LINES_DEFAULT): void {
    process.stderr.write(`${this.logTails(lines)}\n`);
  }

  /** SIGKILLs every node still running, waits for them, and removes the temp dir. Idempotent;
   * set PEERKV_KEEP_TEST_DIRS=1 to keep the dir (data and logs) for a post-mortem. */
  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    const exits = this.nodes
      .filter((node) => node.running)
      .map(async (node) => {
        node.kill('SIGKILL');
        await node.waitExit(KILL_WAIT_MS);
      });
    const results = await Promise.allSettled(exits);
    if (process.env.PEERKV_KEEP_TEST_DIRS !== '1') {
      await fsp.rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
    }
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }
}

/** Starts `nodes` nodes on free ports, each with the full peer list, and waits for all of them. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const count = options.nodes ?? 3;
  assert.ok(
    Number.isInteger(count) && count >= 1 && count <= CLUSTER_NODES_MAX,
    `bad size ${count}`,
  );
  const ports = options.ports ?? (await freePorts(count));
  assert.equal(ports.length, count, 'need one port per node');
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'peerkv-test-'));
  const directUrl = (index: number): string => `http://127.0.0.1:${ports[index]}`;
  const nodes: NodeProcess[] = [];
  for (const [index, port] of ports.entries()) {
    const dataDir = path.join(dir, `node-${index}`);
    await fsp.mkdir(dataDir);
    const peers = ports.map((_, to) =>
      to === index || options.peerUrlFor === undefined
        ? directUrl(to)
        : options.peerUrlFor(index, to, ports),
    );
    nodes.push(
      new NodeProcess({
        port,
        dataDir,
        peers,
        pingfreq: options.pingfreq,
        timeout: options.timeout,
        extraArgs: perNode(options.extraArgs, index),
        env: perNode(options.env, index),
        logPath: path.join(dir, `node-${index}.log`),
        readyTimeoutMs: options.readyTimeoutMs,
        entry: options.entry,
        name: `node${index}:${port}`,
      }),
    );
  }
  const cluster = new Cluster(dir, nodes);
  const started = await Promise.allSettled(nodes.map((node) => node.start()));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    await cluster.cleanup();
    throw failed.reason;
  }
  return cluster;
}

/**
 * Starts a cluster before the tests of the enclosing suite (or file) and
 * cleans it up after them; `onStarted` receives it once it is up.
 */
export function useCluster(options: ClusterOptions, onStarted: (cluster: Cluster) => void): void {
  let cluster: Cluster | undefined;
  before(async () => {
    cluster = await startCluster(options);
    onStarted(cluster);
  });
  after(async () => {
    await cluster?.cleanup();
  });
}

export interface OneNode {
  readonly node: NodeProcess;
  readonly url: string;
  readonly port: number;
}

/** One node for the tests of the enclosing suite; read `node`, `url` and `port` inside them. */
export function useOneNode(options: Omit<ClusterOptions, 'nodes'> = {}): OneNode {
  let cluster: Cluster | undefined;
  useCluster({ ...options, nodes: 1 }, (started) => {
    cluster = started;
  });
  const node = (): NodeProcess => {
    assert.ok(cluster, 'the node starts in before()');
    return cluster.node(0);
  };
  return {
    get node() {
      return node();
    },
    get url() {
      return node().url;
    },
    get port() {
      return node().port;
    },
  };
}
