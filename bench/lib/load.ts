/**
 * One load run with autocannon, in this process, against a server in another
 * process. Returns a compact, JSON-friendly result; shows a throttled progress
 * line on stderr instead of autocannon's tables.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { BenchError } from './bench-error.ts';
import { benchLimits } from './limits.ts';
import { createProgressLine } from './progress.ts';

/** Latencies above this (µs) are recorded as this: past the request timeout anyway. */
const latencyUsHighest = 120_000_000;

export type HttpMethod = NonNullable<autocannon.Request['method']>;
export type LoadRequest = autocannon.Request;

export interface LoadOptions {
  /** Shown in the progress line, kept in the result, e.g. 'ceiling GET /ping c=50'. */
  label: string;
  url: string;
  connections: number;
  durationSec: number;
  method?: HttpMethod;
  body?: string;
  headers?: Record<string, string>;
  /** One request sequence shared by every connection (see request-generators.ts). */
  requests?: LoadRequest[];
  /**
   * Or one sequence per connection, built once per connection with its index
   * (0-based): use it for keys like `k-<connection>-<counter>`. Wins over `requests`.
   */
  requestsForConnection?: (connectionIndex: number) => LoadRequest[];
  /** Seconds of the same load, run first and thrown away (JIT, caches); default 0. */
  warmupSec?: number;
  /** Per-request timeout; default benchLimits.requestTimeoutSec. */
  timeoutSec?: number;
  /** Where the progress line goes; null for none. Default process.stderr. */
  progressStream?: NodeJS.WriteStream | null;
  /** Requests per second across all connections (a fixed-rate load); default: as fast as possible. */
  overallRate?: number;
  /** Ends the measured run early when aborted (e.g. once a background task is done). */
  stopSignal?: AbortSignal;
  /**
   * Run in a process of its own (bench/lib/load-child.ts): for a light probe beside a heavy
   * load, whose event loop would otherwise add its own delays to every latency the probe
   * records. Only for options that travel as JSON (no request functions, no stop signal).
   */
  ownProcess?: boolean;
}

export interface LoadResult {
  label: string;
  url: string;
  method: HttpMethod;
  connections: number;
  durationSec: number;
  /** Mean of the per-second samples, as autocannon reports it. */
  requestsPerSecMean: number;
  /** Spread of those samples: large means a noisy machine or a stalling server. */
  requestsPerSecStddev: number;
  /**
   * Latencies of 2xx responses, measured to the microsecond, of the requests
   * sent once autocannon had built every connection (see latenciesLeftOut).
   */
  latencyMsP50: number;
  latencyMsP90: number;
  latencyMsP99: number;
  latencyMsMax: number;
  latencyMsMean: number;
  requestsTotal: number;
  non2xxCount: number;
  /** Connection errors, timeouts included. */
  errorCount: number;
  timeoutCount: number;
  /**
   * How long autocannon took to build its connections, and how many answers
   * were left out of the latencies because their request was sent before it
   * was done: autocannon builds every connection's prebuilt requests in one
   * synchronous loop (~10 ms a connection for 1,000 requests), and the
   * answers to the requests the first connections sent meanwhile waited on
   * that loop, not on the server (400-770 ms at 50 connections: the read runs'
   * "latency max" until 2026-12-04, bench/probes/read-tail.ts).
   */
  setupMs: number;
  latenciesLeftOut: number;
}

function validateLoadOptions(options: LoadOptions): void {
  const { connections, durationSec } = options;
  if (
    !Number.isInteger(connections) ||
    connections < 1 ||
    connections > benchLimits.connectionsMax
  ) {
    throw new BenchError('BAD_OPTION', `connections must be 1..${benchLimits.connectionsMax}`);
  }
  if (!(durationSec > 0 && durationSec <= benchLimits.durationSecMax)) {
    throw new BenchError('BAD_OPTION', `durationSec must be in (0, ${benchLimits.durationSecMax}]`);
  }
  const warmupSec = options.warmupSec ?? 0;
  if (!(warmupSec >= 0 && warmupSec <= benchLimits.durationSecMax)) {
    throw new BenchError('BAD_OPTION', `warmupSec must be in [0, ${benchLimits.durationSecMax}]`);
  }
  if (options.overallRate !== undefined && !(options.overallRate > 0)) {
    throw new BenchError('BAD_OPTION', 'overallRate must be > 0');
  }
  if (!/^https?:\/\//.test(options.url)) {
    throw new BenchError('BAD_OPTION', `url must be http(s)://..., got ${options.url}`);
  }
}

function toAutocannonOptions(options: LoadOptions, durationSec: number): autocannon.Options {
  const perConnection = options.requestsForConnection;
  let connectionIndex = 0;
  return {
    url: options.url,
    connections: options.connections,
    duration: durationSec,
    method: options.method ?? 'GET',
    body: options.body,
    headers: options.headers,
    requests: options.requests,
    timeout: options.timeoutSec ?? benchLimits.requestTimeoutSec,
    overallRate: options.overallRate,
    // setupClient runs once per connection, in order: that is how a sequence
    // learns its connection's index (setupRequest's context is reset each loop).
    setupClient: perConnection
      ? (client) => client.setRequests(perConnection(connectionIndex++))
      : undefined,
  };
}

/** 2xx latencies in microseconds, recorded from autocannon's per-response hrtime durations. */
function createLatencyHistogram(): RecordableHistogram {
  return createHistogram({ lowest: 1, highest: latencyUsHighest, figures: 3 });
}

function recordLatency(histogram: RecordableHistogram, responseTimeMs: number): void {
  const us = Math.round(responseTimeMs * 1000);
  histogram.record(Math.min(latencyUsHighest, Math.max(1, us)));
}

function latencyMs(histogram: RecordableHistogram, percentile: number | 'max' | 'mean'): number {
  if (histogram.count === 0) return 0;
  const us =
    percentile === 'max'
      ? histogram.max
      : percentile === 'mean'
        ? histogram.mean
        : histogram.percentile(percentile);
  return Math.round(us) / 1000;
}

/** What runAutocannon measured beside autocannon's own result. */
interface Measured {
  readonly latencies: RecordableHistogram;
  readonly setupMs: number;
  readonly latenciesLeftOut: number;
}

function compactResult(
  options: LoadOptions,
  result: autocannon.Result,
  { latencies, setupMs, latenciesLeftOut }: Measured,
): LoadResult {
  return {
    label: options.label,
    url: options.url,
    method: options.method ?? 'GET',
    connections: options.connections,
    durationSec: result.duration,
    requestsPerSecMean: result.requests.mean,
    requestsPerSecStddev: result.requests.stddev,
    latencyMsP50: latencyMs(latencies, 50),
    latencyMsP90: latencyMs(latencies, 90),
    latencyMsP99: latencyMs(latencies, 99),
    latencyMsMax: latencyMs(latencies, 'max'),
    latencyMsMean: latencyMs(latencies, 'mean'),
    requestsTotal: result.requests.total,
    non2xxCount: result.non2xx,
    errorCount: result.errors,
    timeoutCount: result.timeouts,
    setupMs: Math.round(setupMs),
    latenciesLeftOut,
  };
}

export function summarizeLoad(result: LoadResult): string {
  const rps = Math.round(result.requestsPerSecMean).toLocaleString('en-US');
  const bad = result.non2xxCount + result.errorCount;
  return `${rps} req/s, p50 ${result.latencyMsP50} ms, p99 ${result.latencyMsP99} ms, ${bad} bad`;
}

/**
 * One autocannon run. The callback form, wrapped in a promise: the promise
 * form does return the event emitter too, but @types/autocannon types it as a
 * bare Promise, and the 'response' events are what give sub-millisecond
 * latencies (autocannon's own histogram keeps whole milliseconds).
 */
async function runAutocannon(
  options: LoadOptions,
  label: string,
  durationSec: number,
  stopSignal?: AbortSignal,
): Promise<LoadResult> {
  const stream = options.progressStream === undefined ? process.stderr : options.progressStream;
  const progress = createProgressLine(label, durationSec, stream);
  const ticker = setInterval(() => progress.update(), 250);
  const latencies = createLatencyHistogram();
  let setupMs = 0;
  let latenciesLeftOut = 0;
  try {
    const result = await new Promise<autocannon.Result>((resolve, reject) => {
      const calledAtMs = performance.now();
      const instance = autocannon(
        toAutocannonOptions(options, durationSec),
        (err: unknown, finished: autocannon.Result) => (err ? reject(err) : resolve(finished)),
      );
      // autocannon() returns once it has built every connection (see LoadResult.setupMs).
      const builtAtMs = performance.now();
      setupMs = builtAtMs - calledAtMs;
      instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
        if (statusCode < 200 || statusCode >= 300) return;
        if (performance.now() - responseTimeMs < builtAtMs) latenciesLeftOut += 1;
        else recordLatency(latencies, responseTimeMs);
      });
      if (stopSignal) {
        if (stopSignal.aborted) instance.stop();
        else stopSignal.addEventListener('abort', () => instance.stop(), { once: true });
      }
    });
    const compact = compactResult({ ...options, label }, result, {
      latencies,
      setupMs,
      latenciesLeftOut,
    });
    progress.finish(summarizeLoad(compact));
    return compact;
  } catch (err) {
    throw new BenchError('LOAD_FAILED', `${label}: autocannon failed`, { cause: err });
  } finally {
    clearInterval(ticker);
  }
}

/** Runs `options` in a child process (see LoadOptions.ownProcess). */
function runInChild(options: LoadOptions): Promise<LoadResult> {
  if (options.requests || options.requestsForConnection || options.stopSignal) {
    throw new BenchError(
      'BAD_OPTION',
      `${options.label}: an own-process load takes JSON options only`,
    );
  }
  const { progressStream: _stream, ...plain } = options;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'load-child.ts'), JSON.stringify(plain)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`exited with code ${code}`);
        resolve(JSON.parse(out) as LoadResult);
      } catch (cause) {
        reject(
          new BenchError('LOAD_FAILED', `${options.label}: own-process load failed`, { cause }),
        );
      }
    });
  });
}

/** Warms up (if asked), then runs autocannon for `durationSec`; resolves with the compact result. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  validateLoadOptions(options);
  if (options.ownProcess) return runInChild(options);
  const warmupSec = options.warmupSec ?? 0;
  if (warmupSec > 0) await runAutocannon(options, `${options.label} (warm-up)`, warmupSec);
  return runAutocannon(options, options.label, options.durationSec, options.stopSignal);
}
