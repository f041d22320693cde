/**
 * The parts of prom-client a node uses, loaded without the rest. Its index
 * also loads the Pushgateway (https, tls), the cluster aggregator and, through
 * the process CPU counter, `@opentelemetry/api` for exemplars we never make:
 * 4.4 MiB of RSS in a bare process, 0.8 MiB of a node's (bench/ANALYSIS.md,
 * "Idle memory"). The default metrics are prom-client's own modules, all but the CPU
 * counters, which `processCpu` below gives under the same names.
 * `test/unit/prom-core.test.ts` checks these are the very values prom-client
 * exports and that the registry holds every default metric prom-client's
 * `collectDefaultMetrics` would register, so an upgrade that moves a file or
 * adds a metric fails there, not in a node.
 */
import { createRequire } from 'node:module';
import type * as Prom from 'prom-client';

const load = createRequire(import.meta.url);

export const Registry = load('prom-client/lib/registry') as typeof Prom.Registry;
export type Registry = Prom.Registry;
export const Counter = load('prom-client/lib/counter') as typeof Prom.Counter;
export type Counter<T extends string = string> = Prom.Counter<T>;
export const Gauge = load('prom-client/lib/gauge') as typeof Prom.Gauge;
export type Gauge<T extends string = string> = Prom.Gauge<T>;
export const Histogram = load('prom-client/lib/histogram') as typeof Prom.Histogram;
export type Histogram<T extends string = string> = Prom.Histogram<T>;

/** prom-client's default metric modules (lib/metrics/), by their key in its `metricsList`. */
export const DEFAULT_METRIC_MODULES = {
  processStartTime: 'processStartTime',
  osMemoryHeap: 'osMemoryHeap',
  processOpenFileDescriptors: 'processOpenFileDescriptors',
  processMaxFileDescriptors: 'processMaxFileDescriptors',
  eventLoopLag: 'eventLoopLag',
  processResources: 'processResources',
  processHandles: 'processHandles',
  processRequests: 'processRequests',
  heapSizeAndUsed: 'heapSizeAndUsed',
  heapSpacesSizeAndUsed: 'heapSpacesSizeAndUsed',
  version: 'version',
  gc: 'gc',
} as const;

/** The one default metric module not loaded: the CPU counters, made by `processCpu`. */
export const REPLACED_DEFAULT_METRIC = 'processCpuTotal';

type DefaultMetric = (register: Registry, config: { eventLoopMonitoringPrecision: number }) => void;

/** prom-client's `collectDefaultMetrics` into `register`, without its exemplar support. */
export function collectDefaultMetrics(config: {
  register: Registry;
  eventLoopMonitoringPrecision: number;
}): void {
  processCpu(config.register);
  for (const file of Object.values(DEFAULT_METRIC_MODULES)) {
    const metric = load(`prom-client/lib/metrics/${file}`) as DefaultMetric;
    metric(config.register, config);
  }
}

/**
 * `process_cpu_user_seconds_total`, `process_cpu_system_seconds_total` and
 * `process_cpu_seconds_total`, named and explained as prom-client names them,
 * advanced from `process.cpuUsage()` at each scrape.
 */
function processCpu(register: Registry): void {
  const registers = [register];
  let last = process.cpuUsage();
  const user = new Counter({
    name: 'process_cpu_user_seconds_total',
    help: 'Total user CPU time spent in seconds.',
    registers,
    collect() {
      const now = process.cpuUsage();
      const userMicros = now.user - last.user;
      const systemMicros = now.system - last.system;
      last = now;
      user.inc(userMicros / 1e6);
      system.inc(systemMicros / 1e6);
      total.inc((userMicros + systemMicros) / 1e6);
    },
  });
  const system = new Counter({
    name: 'process_cpu_system_seconds_total',
    help: 'Total system CPU time spent in seconds.',
    registers,
  });
  const total = new Counter({
    name: 'process_cpu_seconds_total',
    help: 'Total user and system CPU time spent in seconds.',
    registers,
  });
}
