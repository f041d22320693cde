/**
 * Child server processes for the benchmarks: start one (node --import tsx),
 * wait until it answers, read its RSS, stop it (SIGTERM, then SIGKILL). A
 * ProcessGroup tracks every child and temp dir it made, so run.ts can clean up
 * after an exception or Ctrl-C.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { BenchError } from './bench-error.ts';
import { benchLimits } from './limits.ts';

export interface StartServerOptions {
  /** Shown in progress and error messages, e.g. 'ceiling' or 'node-2'. */
  name: string;
  /** Script to run: `node --import tsx <file> ...args` for a .ts file, else `node <file> ...args`. */
  file: string;
  args?: readonly string[];
  /** Polled until it answers 2xx. */
  readyUrl: string;
  readyDeadlineMs?: number;
  /** Pause between readiness probes; default benchLimits.readyProbeIntervalMs. */
  readyProbeIntervalMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves once the child has exited (never rejects). */
  readonly exited: Promise<ChildExit>;
  isRunning(): boolean;
  /** The last few KiB of its stdout and stderr, for error messages. */
  outputTail(): string;
}

/** Keeps the last `bytesMax` bytes written to it. */
class OutputTail {
  #chunks: Buffer[] = [];
  #bytes = 0;
  readonly #bytesMax: number;

  constructor(bytesMax: number) {
    this.#bytesMax = bytesMax;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    while (this.#bytes > this.#bytesMax && this.#chunks.length > 1) {
      this.#bytes -= this.#chunks.shift()!.length;
    }
  }

  text(): string {
    const all = Buffer.concat(this.#chunks);
    return all.subarray(Math.max(0, all.length - this.#bytesMax)).toString('utf8');
  }
}

/** Resolves true if `promise` settles within `ms`, false otherwise. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const timer = new AbortController();
  const timeout = sleep(ms, false, { signal: timer.signal }).catch(() => false);
  const settled = await Promise.race([promise.then(() => true), timeout]);
  timer.abort();
  return settled;
}

function spawnServer(options: StartServerOptions): ServerProcess {
  const child = spawn(
    process.execPath,
    // TypeScript (the ceiling servers) through tsx; JavaScript (the peerkv bin) as it is.
    [
      ...(options.file.endsWith('.ts') ? ['--import', 'tsx'] : []),
      options.file,
      ...(options.args ?? []),
    ],
    {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const tail = new OutputTail(benchLimits.childOutputTailBytesMax);
  child.stdout?.on('data', (chunk: Buffer) => tail.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => tail.push(chunk));
  let running = true;
  const exited = new Promise<ChildExit>((resolve) => {
    child.once('exit', (code, signal) => {
      running = false;
      resolve({ code, signal });
    });
    // A spawn failure emits 'error' and may never emit 'exit'.
    child.once('error', (error) => {
      running = false;
      resolve({ code: null, signal: null, error });
    });
  });
  return {
    name: options.name,
    pid: child.pid ?? -1,
    child,
    exited,
    isRunning: () => running,
    outputTail: () => tail.text(),
  };
}

function describeExit(server: ServerProcess, exit: ChildExit): string {
  const how = exit.error
    ? `failed to start (${exit.error.message})`
    : `exited (code ${exit.code}, signal ${exit.signal})`;
  return `${server.name} ${how}; output tail:\n${server.outputTail()}`;
}

/**
 * Polls `url` until it answers 2xx, or throws NOT_READY after `deadlineMs`.
 * If `server` is given and exits meanwhile, throws CHILD_EXITED at once.
 */
export async function waitForReady(
  url: string,
  options: { deadlineMs?: number; server?: ServerProcess; probeIntervalMs?: number } = {},
): Promise<void> {
  const deadlineMs = options.deadlineMs ?? benchLimits.readyDeadlineMs;
  const probeIntervalMs = options.probeIntervalMs ?? benchLimits.readyProbeIntervalMs;
  const deadlineAt = Date.now() + deadlineMs;
  const attemptsMax = Math.ceil(deadlineMs / probeIntervalMs) + 1;
  let lastProblem: unknown = null;
  for (let attempt = 0; attempt < attemptsMax && Date.now() < deadlineAt; attempt++) {
    if (options.server && !options.server.isRunning()) {
      throw new BenchError(
        'CHILD_EXITED',
        describeExit(options.server, await options.server.exited),
      );
    }
    try {
      const response = await request(url, {
        headersTimeout: benchLimits.readyProbeTimeoutMs,
        bodyTimeout: benchLimits.readyProbeTimeoutMs,
        reset: true,
      });
      await response.body.dump();
      if (response.statusCode >= 200 && response.statusCode < 300) return;
      lastProblem = new Error(`status ${response.statusCode}`);
    } catch (err) {
      // Expected while the server boots (ECONNREFUSED); kept as the cause if we give up.
      lastProblem = err;
    }
    await sleep(probeIntervalMs);
  }
  const tail = options.server ? `; output tail:\n${options.server.outputTail()}` : '';
  throw new BenchError('NOT_READY', `${url} not ready after ${deadlineMs} ms${tail}`, {
    cause: lastProblem,
  });
}

/** Resident set size of a live process, in bytes (Linux: /proc/<pid>/status VmRSS). */
export async function readRssBytes(pid: number): Promise<number> {
  let status: string;
  try {
    status = await readFile(`/proc/${pid}/status`, 'utf8');
  } catch (err) {
    throw new BenchError('RSS_UNAVAILABLE', `cannot read /proc/${pid}/status`, { cause: err });
  }
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match?.[1]) throw new BenchError('RSS_UNAVAILABLE', `no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

/** A TCP port that was free on `host` a moment ago (the usual small race applies). */
export async function findFreePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.ok(address !== null && typeof address === 'object', 'listening server has an address');
  return address.port;
}

export class ProcessGroup {
  readonly #servers = new Set<ServerProcess>();
  readonly #tempDirs = new Set<string>();

  /** Starts a child and waits until `readyUrl` answers; stops it if it never does. */
  async startServer(options: StartServerOptions): Promise<ServerProcess> {
    if (this.#servers.size >= benchLimits.childrenMax) {
      throw new BenchError('TOO_MANY_CHILDREN', `more than ${benchLimits.childrenMax} children`);
    }
    const server = spawnServer(options);
    this.#servers.add(server);
    void server.exited.then(() => this.#servers.delete(server));
    try {
      await waitForReady(options.readyUrl, {
        deadlineMs: options.readyDeadlineMs,
        server,
        probeIntervalMs: options.readyProbeIntervalMs,
      });
    } catch (err) {
      await this.stop(server);
      throw err;
    }
    return server;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; throws STOP_FAILED if it still lives. */
  async stop(server: ServerProcess, graceMs: number = benchLimits.stopGraceMs): Promise<void> {
    if (server.isRunning()) {
      server.child.kill('SIGTERM');
      if (!(await settlesWithin(server.exited, graceMs))) {
        server.child.kill('SIGKILL');
        if (!(await settlesWithin(server.exited, benchLimits.killDeadlineMs))) {
          throw new BenchError(
            'STOP_FAILED',
            `${server.name} (pid ${server.pid}) survived SIGKILL`,
          );
        }
      }
    }
    this.#servers.delete(server);
  }

  /** A fresh directory under the OS temp dir, removed by cleanup(). */
  async makeTempDir(prefix: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), `peerkv-bench-${prefix}-`));
    this.#tempDirs.add(dir);
    return dir;
  }

  runningCount(): number {
    return this.#servers.size;
  }

  /** Stops every child (in parallel) and removes every temp dir; reports all failures. */
  async cleanup(): Promise<void> {
    const stops = [...this.#servers].map((server) => this.stop(server));
    const removals = [...this.#tempDirs].map(async (dir) => {
      await rm(dir, { recursive: true, force: true });
      this.#tempDirs.delete(dir);
    });
    const outcomes = await Promise.allSettled([...stops, ...removals]);
    const failures = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failures.length > 0) {
      throw new AggregateError(
        failures.map((f) => f.reason),
        'cleanup failed',
      );
    }
  }

  /** Last resort from a process 'exit' handler, where nothing async runs: SIGKILL all. */
  killAllSync(): void {
    for (const server of this.#servers) {
      if (server.isRunning()) server.child.kill('SIGKILL');
    }
  }
}
