/**
 * The ceilings: a bare polka server (bench/lib/ceiling-server.ts, its own
 * process) under the same client and settings as peerkv. Measures GET /ping
 * and POST /echo at the default connection count, then GET /ping across the
 * connection sweep; every peerkv case is compared with these numbers.
 */
import { fileURLToPath } from 'node:url';
import type { BaseContext, Ceilings } from '../lib/bench-context.ts';
import { BenchError } from '../lib/bench-error.ts';
import type { LoadResult } from '../lib/load.ts';
import { rowsFromLoad } from '../lib/load-rows.ts';
import { findFreePort, readRssBytes } from '../lib/processes.ts';
import type { CaseResult } from '../lib/report.ts';
import { distinctKeyWrites } from '../lib/request-generators.ts';
import { renderBarChart, renderLineChart } from '../lib/svg-chart.ts';

export const ceilingGroup = 'Ceiling (bare polka)';
const ceilingServerFile = fileURLToPath(new URL('../lib/ceiling-server.ts', import.meta.url));
const MiB = 1024 * 1024;

function connectionsText(connections: number): string {
  return connections === 1 ? '1 connection' : `${connections} connections`;
}

/** A ceiling that failed requests would make every ratio against it meaningless. */
function assertValidCeiling(load: LoadResult): void {
  if (load.requestsTotal === 0 || load.non2xxCount > 0) {
    throw new BenchError(
      'CEILING_INVALID',
      `${load.label}: ${load.requestsTotal} requests, ${load.non2xxCount} non-2xx`,
    );
  }
}

async function measureSweep(
  ctx: BaseContext,
  baseUrl: string,
  ping: LoadResult,
): Promise<Map<number, LoadResult>> {
  const pingByConnections = new Map<number, LoadResult>([[ping.connections, ping]]);
  for (const connections of ctx.settings.connectionsSweep) {
    if (pingByConnections.has(connections)) continue;
    const load = await ctx.load({
      label: `ceiling GET /ping c=${connections}`,
      url: `${baseUrl}/ping`,
      connections,
    });
    assertValidCeiling(load);
    pingByConnections.set(connections, load);
  }
  return new Map([...pingByConnections].sort(([a], [b]) => a - b));
}

function ceilingRows(ceilings: Ceilings, rssBytes: number): CaseResult[] {
  const group = ceilingGroup;
  const { echo } = ceilings;
  const rows: CaseResult[] = [];
  for (const [connections, load] of ceilings.pingByConnections) {
    const all = rowsFromLoad({ group, name: `GET /ping, ${connectionsText(connections)}`, load });
    // Away from the default point, throughput, p99 and failures tell the story.
    rows.push(
      ...(connections === echo.connections ? all : all.filter((r) => r.metric !== 'latency p50')),
    );
  }
  rows.push(
    ...rowsFromLoad({
      group,
      name: `POST /echo, ${connectionsText(echo.connections)}`,
      load: echo,
    }),
  );
  rows.push({
    group,
    name: 'server after all runs',
    metric: 'RSS',
    value: rssBytes / MiB,
    unit: 'MiB',
  });
  return rows;
}

async function writeCeilingCharts(ctx: BaseContext, ceilings: Ceilings): Promise<void> {
  const sweep = [...ceilings.pingByConnections.values()];
  const throughput = renderLineChart({
    title: 'Bare polka GET /ping: throughput vs connections',
    xLabel: 'connections (log scale)',
    yLabel: 'requests/s',
    xScale: 'log',
    series: [
      {
        name: 'GET /ping',
        points: sweep.map((l) => ({ x: l.connections, y: l.requestsPerSecMean })),
      },
    ],
  });
  await ctx.report.addChart(
    ceilingGroup,
    'ceiling-throughput-vs-connections',
    'Throughput vs connections',
    throughput,
  );
  const latency = renderLineChart({
    title: 'Bare polka GET /ping: latency vs connections',
    xLabel: 'connections (log scale)',
    yLabel: 'latency (ms)',
    xScale: 'log',
    series: [
      { name: 'p50', points: sweep.map((l) => ({ x: l.connections, y: l.latencyMsP50 })) },
      { name: 'p99', points: sweep.map((l) => ({ x: l.connections, y: l.latencyMsP99 })) },
    ],
  });
  await ctx.report.addChart(
    ceilingGroup,
    'ceiling-latency-vs-connections',
    'Latency vs connections',
    latency,
  );
  const ping = ceilings.pingByConnections.get(ceilings.echo.connections);
  const bars = renderBarChart({
    title: `Bare polka at ${ceilings.echo.connections} connections`,
    yLabel: 'requests/s',
    categories: ['GET /ping', 'POST /echo'],
    series: [
      {
        name: 'bare polka',
        values: [ping?.requestsPerSecMean ?? 0, ceilings.echo.requestsPerSecMean],
      },
    ],
  });
  await ctx.report.addChart(ceilingGroup, 'ceiling-get-vs-post', 'GET vs POST', bars);
}

async function measureOnServer(ctx: BaseContext, baseUrl: string): Promise<Ceilings> {
  const connections = ctx.settings.connectionsDefault;
  const ping = await ctx.load({
    label: `ceiling GET /ping c=${connections}`,
    url: `${baseUrl}/ping`,
    connections,
    warmupSec: ctx.settings.warmupSec,
  });
  assertValidCeiling(ping);
  // The same distinct-key bodies a peerkv write case sends, so the client does the same work.
  const echo = await ctx.load({
    label: `ceiling POST /echo c=${connections}`,
    url: `${baseUrl}/echo`,
    connections,
    warmupSec: ctx.settings.warmupSec,
    requestsForConnection: distinctKeyWrites({ path: '/echo' }),
  });
  assertValidCeiling(echo);
  const pingByConnections = await measureSweep(ctx, baseUrl, ping);
  return { pingByConnections, echo };
}

/** Starts the ceiling server, measures, stops it; returns the ceilings and their report rows. */
export async function measureCeilings(
  ctx: BaseContext,
): Promise<{ ceilings: Ceilings; results: CaseResult[] }> {
  const port = await findFreePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const server = await ctx.processes.startServer({
    name: 'ceiling',
    file: ceilingServerFile,
    args: ['--port', String(port)],
    readyUrl: `${baseUrl}/ping`,
    cwd: ctx.repoDir,
  });
  try {
    const ceilings = await measureOnServer(ctx, baseUrl);
    const rssBytes = await readRssBytes(server.pid);
    await writeCeilingCharts(ctx, ceilings);
    return { ceilings, results: ceilingRows(ceilings, rssBytes) };
  } finally {
    await ctx.processes.stop(server);
  }
}
