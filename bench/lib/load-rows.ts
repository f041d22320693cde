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

/**
 * Like rowsFromLoad, with every latency percentile the report shows:
 * throughput, p50, p90, p99, max, failed requests.
 */
export function percentileRowsFromLoad(options: LoadRowsOptions): CaseResult[] {
  const rows = rowsFromLoad(options);
  const { load, ceiling } = options;
  const extra = (metric: string, value: number, ceilingValue: number | undefined): CaseResult => ({
    group: options.group,
    name: options.name,
    metric,
    value,
    unit: 'ms',
    ceiling: ceilingValue,
    load,
  });
  const [throughput, p50, p99, failed] = rows;
  return [
    throughput!,
    p50!,
    extra('latency p90', load.latencyMsP90, ceiling?.latencyMsP90),
    p99!,
    extra('latency max', load.latencyMsMax, ceiling?.latencyMsMax),
    failed!,
  ];
}

/**
 * A ceiling for a mix of requests: throughput is the harmonic blend (the
 * time one request of the mix takes on average), latencies the weighted
 * mean of the parts' percentiles (an approximation: a mixture's percentile
 * is not the mean of the parts' percentiles, but it is the right scale).
 */
export function blendLoads(
  label: string,
  parts: readonly { load: LoadResult; share: number }[],
): LoadResult {
  const first = parts[0]!.load;
  const weighted = (pick: (l: LoadResult) => number): number =>
    parts.reduce((sum, p) => sum + p.share * pick(p.load), 0);
  return {
    ...first,
    label,
    requestsPerSecMean: 1 / parts.reduce((sum, p) => sum + p.share / p.load.requestsPerSecMean, 0),
    requestsPerSecStddev: 0,
    latencyMsP50: weighted((l) => l.latencyMsP50),
    latencyMsP90: weighted((l) => l.latencyMsP90),
    latencyMsP99: weighted((l) => l.latencyMsP99),
    latencyMsMax: Math.max(...parts.map((p) => p.load.latencyMsMax)),
    latencyMsMean: weighted((l) => l.latencyMsMean),
    requestsTotal: parts.reduce((sum, p) => sum + p.load.requestsTotal, 0),
    non2xxCount: parts.reduce((sum, p) => sum + p.load.non2xxCount, 0),
    errorCount: parts.reduce((sum, p) => sum + p.load.errorCount, 0),
    timeoutCount: parts.reduce((sum, p) => sum + p.load.timeoutCount, 0),
  };
}
