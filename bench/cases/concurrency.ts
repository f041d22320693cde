/**
 * Concurrency sweep, run by the single-node case on its node: writes
 * (POST /store, distinct keys) and reads (GET /store/key) under 1, 10, 50
 * and 200 connections, each beside the bare polka ceiling at the same count
 * (POST /echo for writes, GET /ping for reads). The default count's point is
 * the single-node case's headline run.
 */
import type { BenchContext } from '../lib/bench-context.ts';
import type { LoadResult } from '../lib/load.ts';
import { rowsFromLoad } from '../lib/load-rows.ts';
import { connectionsText } from '../lib/peerkv.ts';
import type { CaseResult } from '../lib/report.ts';
import { renderLineChart } from '../lib/svg-chart.ts';

export const concurrencyGroup = 'Concurrency sweep (single node)';

export interface SweepPoint {
  connections: number;
  writes: LoadResult;
  reads: LoadResult;
}

interface ChartPoint extends SweepPoint {
  echo: LoadResult;
  ping: LoadResult;
}

export interface SweepLoads {
  writes(connections: number, durationSec: number): Promise<LoadResult>;
  reads(connections: number, durationSec: number): Promise<LoadResult>;
}

/** Measures every count of the sweep but `measured` (already run); returns rows and charts. */
export async function runConcurrencySweep(
  ctx: BenchContext,
  loads: SweepLoads,
  measured: SweepPoint,
): Promise<CaseResult[]> {
  const group = concurrencyGroup;
  const durationSec = ctx.settings.sweepDurationSec;
  const points: ChartPoint[] = [];
  for (const connections of ctx.settings.connectionsSweep) {
    const point =
      connections === measured.connections
        ? measured
        : {
            connections,
            writes: await loads.writes(connections, durationSec),
            reads: await loads.reads(connections, durationSec),
          };
    points.push({
      ...point,
      echo: ctx.ceilings.echoByConnections.get(connections)!,
      ping: ctx.ceilings.pingByConnections.get(connections)!,
    });
  }
  const rows = points.flatMap((p) => [
    ...rowsFromLoad({
      group,
      name: `POST /store, ${connectionsText(p.connections)} (vs POST /echo)`,
      load: p.writes,
      ceiling: p.echo,
    }),
    ...rowsFromLoad({
      group,
      name: `GET /store/key, ${connectionsText(p.connections)} (vs GET /ping)`,
      load: p.reads,
      ceiling: p.ping,
    }),
  ]);
  ctx.report.addNote(
    group,
    `The node of the single-node case; each point is a ${durationSec} s run (the ` +
      `${connectionsText(measured.connections)} point is the headline run), beside the bare ` +
      'polka run at the same connection count. With 1 connection every write waits for its own ' +
      'commit (one WAL fsync per request); with more, group commit shares the fsync.',
  );
  await addCharts(ctx, points);
  return rows;
}

async function addCharts(ctx: BenchContext, points: ChartPoint[]): Promise<void> {
  const series = (name: string, pick: (p: ChartPoint) => number) => ({
    name,
    points: points.map((p) => ({ x: p.connections, y: pick(p) })),
  });
  const throughput = renderLineChart({
    title: 'Throughput vs connections: peerkv and the bare polka ceiling',
    xLabel: 'connections (log scale)',
    yLabel: 'requests/s',
    xScale: 'log',
    series: [
      series('ceiling GET /ping', (p) => p.ping.requestsPerSecMean),
      series('peerkv GET /store/key', (p) => p.reads.requestsPerSecMean),
      series('ceiling POST /echo', (p) => p.echo.requestsPerSecMean),
      series('peerkv POST /store', (p) => p.writes.requestsPerSecMean),
    ],
  });
  await ctx.report.addChart(
    concurrencyGroup,
    'concurrency-throughput-vs-connections',
    'Throughput vs connections',
    throughput,
  );
  const latency = renderLineChart({
    title: 'Latency p99 vs connections',
    xLabel: 'connections (log scale)',
    yLabel: 'latency p99 (ms)',
    xScale: 'log',
    series: [
      series('ceiling GET /ping', (p) => p.ping.latencyMsP99),
      series('peerkv GET /store/key', (p) => p.reads.latencyMsP99),
      series('ceiling POST /echo', (p) => p.echo.latencyMsP99),
      series('peerkv POST /store', (p) => p.writes.latencyMsP99),
    ],
  });
  await ctx.report.addChart(
    concurrencyGroup,
    'concurrency-latency-vs-connections',
    'Latency p99 vs connections',
    latency,
  );
}
