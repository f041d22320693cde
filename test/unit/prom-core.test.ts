// prom-core: the node's prom-client classes are prom-client's own, its registry holds every
// default metric prom-client's collectDefaultMetrics registers (the CPU counters made here),
// and a node's modules never load prom-client's index nor @opentelemetry/api (~4 MiB of RSS).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as prom from 'prom-client';
import { Metrics } from '../../src/metrics/metrics.ts';
import {
  Counter,
  collectDefaultMetrics,
  DEFAULT_METRIC_MODULES,
  Gauge,
  Histogram,
  REPLACED_DEFAULT_METRIC,
  Registry,
} from '../../src/metrics/prom-core.ts';
import { modulesLoadedBy } from '../helpers/loaded-modules.ts';

/** Metric name -> its # HELP and # TYPE lines, from a registry's exposition text. */
async function described(registry: prom.Registry): Promise<Map<string, string>> {
  const lines = (await registry.metrics()).split('\n').filter((line) => line.startsWith('# '));
  const byName = new Map<string, string>();
  for (const line of lines) {
    const name = line.split(' ')[2]!;
    byName.set(name, `${byName.get(name) ?? ''}${line}\n`);
  }
  return byName;
}

describe('prom-core', () => {
  test('exports the very classes prom-client exports', () => {
    assert.equal(Registry, prom.Registry);
    assert.equal(Counter, prom.Counter);
    assert.equal(Gauge, prom.Gauge);
    assert.equal(Histogram, prom.Histogram);
  });

  test("loads every default metric module of prom-client's but the CPU one it replaces", () => {
    const listed = (prom.collectDefaultMetrics as unknown as { metricsList: string[] }).metricsList;
    const ours = [...Object.keys(DEFAULT_METRIC_MODULES), REPLACED_DEFAULT_METRIC];
    // processResources is listed only where process.getActiveResourcesInfo exists (Node 17+).
    assert.deepEqual([...ours].sort(), [...listed].sort());
  });

  test('registers the metrics prom-client would, named and described the same', async () => {
    const theirs = new prom.Registry();
    prom.collectDefaultMetrics({ register: theirs, eventLoopMonitoringPrecision: 20 });
    const ours = new Registry();
    collectDefaultMetrics({ register: ours, eventLoopMonitoringPrecision: 20 });
    const [want, got] = [await described(theirs), await described(ours)];
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    for (const [name, text] of want) assert.equal(got.get(name), text, name);
  });

  test('the CPU counters advance with the CPU this process spends', async () => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
    const read = async (name: string) =>
      (await registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0;
    const before = await read('process_cpu_seconds_total');
    const until = performance.now() + 60;
    while (performance.now() < until) Math.sqrt(Math.random());
    const user = await read('process_cpu_user_seconds_total');
    const system = await read('process_cpu_system_seconds_total');
    const total = await read('process_cpu_seconds_total');
    assert.ok(total - before >= 0.03, `spent ${total - before} s of CPU in 60 ms of spinning`);
    assert.ok(Math.abs(user + system - total) < 0.01, `${user} + ${system} != ${total}`);
  });

  test("a node's Metrics serve the default metrics", async () => {
    const text = await new Metrics('n1').registry.metrics();
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_gc_duration_seconds',
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
  });

  test("a node's metrics load neither prom-client's index nor @opentelemetry/api", () => {
    const loaded = modulesLoadedBy([
      "await import('./src/node.ts');",
      "const { Metrics } = await import('./src/metrics/metrics.ts');",
      "await new Metrics('n1').registry.metrics();",
    ]);
    const shown = loaded.join('\n');
    assert.ok(
      loaded.some((path) => path.endsWith('/prom-client/lib/registry.js')),
      shown,
    );
    assert.ok(!loaded.some((path) => path.endsWith('/prom-client/index.js')), shown);
    assert.ok(!loaded.some((path) => path.includes('/@opentelemetry/')), shown);
  });
});
