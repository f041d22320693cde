/**
 * Turns one load run into report rows: throughput, latency p50 and p99, and
 * failed requests, each beside the same number from a ceiling run.
 */
import type { LoadResult } from './load.ts';
import type { CaseResult } from './report.ts';

export interface LoadRowsOptions {
  group: string;
  /** Row label, e.g. 'GET /kv/:key, 50 connections'. */
  name: string;
  load: LoadResult;
  /** The bare polka run to compare with (same connections, same duration). */
  ceiling?: LoadResult;
  /** e.g. 0.5: throughput must be at least half the ceiling's. */
  throughputRatioMin?: number;
  latencyMsP99Max?: number;
  /** Non-2xx plus connection errors; default 0; null for no target. */
  failedRequestsMax?: number | null;
}

function failedRequests(load: LoadResult): number {
  return load.non2xxCount + load.errorCount;
}

export function rowsFromLoad(options: LoadRowsOptions): CaseResult[] {
  const { group, name, load, ceiling } = options;
  const failedMax = options.failedRequestsMax === undefined ? 0 : options.failedRequestsMax;
  const row = (metric: string, value: number, unit: string, ceilingValue?: number): CaseResult => ({
    group,
    name,
    metric,
    value,
    unit,
    ceiling: ceilingValue,
    load,
  });
  const throughput = row(
    'throughput',
    load.requestsPerSecMean,
    'req/s',
    ceiling?.requestsPerSecMean,
  );
  if (options.throughputRatioMin !== undefined) {
    throughput.target = { on: 'ratio', op: '>=', threshold: options.throughputRatioMin };
  }
  const p99 = row('latency p99', load.latencyMsP99, 'ms', ceiling?.latencyMsP99);
  if (options.latencyMsP99Max !== undefined) {
    p99.target = { on: 'value', op: '<=', threshold: options.latencyMsP99Max };
  }
  const failed = row(
    'failed requests',
    failedRequests(load),
    '',
    ceiling && failedRequests(ceiling),
  );
  if (failedMax !== null) failed.target = { on: 'value', op: '<=', threshold: failedMax };
  return [
    throughput,
    row('latency p50', load.latencyMsP50, 'ms', ceiling?.latencyMsP50),
    p99,
    failed,
  ];
}
