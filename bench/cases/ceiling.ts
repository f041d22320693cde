/**
 * The ceilings: a bare polka server (bench/lib/ceiling-server.ts, its own
 * process) under the same client and settings as peerkv. Measures GET /ping
 * and POST /echo at the default connection count, then GET /ping across the
 * connection sweep; every peerkv case is compared with these numbers. Then the
 * body-parsing ceiling (issue 14): POST /store and GET /store/key on the same
 * server, reading and JSON.parsing the very bodies peerkv's write and read
 * cases send, answering a small JSON object: the HTTP and JSON work any front
 * end must do, so peerkv's gap to it is its own cost.
 */
import { fileURLToPath } from 'node:url';
import type { BaseContext, Ceilings } from '../lib/bench-context.ts';
import { BenchError } from '../lib/bench-error.ts';
import type { LoadResult } from '../lib/load.ts';
import { rowsFromLoad } from '../lib/load-rows.ts';
import { findFreePort, readRssBytes } from '../lib/processes.ts';
import type { CaseResult } from '../lib/report.ts';
import {
  createSeededRandom,
  distinctKeyWrites,
  randomExistingKeyReads,
} from '../lib/request-generators.ts';
import { renderBarChart, renderLineChart } from '../lib/svg-chart.ts';
import { preloadedKeys } from './single-node.ts';

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

/** The other points of the connection sweep (the default count is measured already). */
async function measureSweep(
  ctx: BaseContext,
  atDefault: LoadResult,
  measure: (connections: number) => Promise<LoadResult>,
): Promise<Map<number, LoadResult>> {
  const byConnections = new Map<number, LoadResult>([[atDefault.connections, atDefault]]);
  for (const connections of ctx.settings.connectionsSweep) {
    if (byConnections.has(connections)) continue;
    const load = await measure(connections);
    assertValidCeiling(load);
    byConnections.set(connections, load);
  }
  return new Map([...byConnections].sort(([a], [b]) => a - b));
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
  for (const [connections, load] of ceilings.echoByConnections) {
    const all = rowsFromLoad({ group, name: `POST /echo, ${connectionsText(connections)}`, load });
    rows.push(
      ...(connections === echo.connections ? all : all.filter((r) => r.metric !== 'latency p50')),
    );
  }
  const at = connectionsText(echo.connections);
  const parsingRows = (name: string, load: LoadResult) =>
    rowsFromLoad({ group, name: `${name}, ${at} (body-parsing ceiling)`, load });
  rows.push(...parsingRows('POST /store, parsing the write bodies', ceilings.parsing.writes));
  rows.push(...parsingRows('GET /store/key, parsing the JSON key bodies', ceilings.parsing.reads));
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
  const echoSweep = [...ceilings.echoByConnections.values()];
  const throughput = renderLineChart({
    title: 'Bare polka: throughput vs connections',
    xLabel: 'connections (log scale)',
    yLabel: 'requests/s',
    xScale: 'log',
    series: [
      {
        name: 'GET /ping',
        points: sweep.map((l) => ({ x: l.connections, y: l.requestsPerSecMean })),
      },
      {
        name: 'POST /echo',
        points: echoSweep.map((l) => ({ x: l.connections, y: l.requestsPerSecMean })),
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
    title: 'Bare polka: latency vs connections',
    xLabel: 'connections (log scale)',
    yLabel: 'latency (ms)',
    xScale: 'log',
    series: [
      {
        name: 'GET /ping p50',
        points: sweep.map((l) => ({ x: l.connections, y: l.latencyMsP50 })),
      },
      {
        name: 'GET /ping p99',
        points: sweep.map((l) => ({ x: l.connections, y: l.latencyMsP99 })),
      },
      {
        name: 'POST /echo p99',
        points: echoSweep.map((l) => ({ x: l.connections, y: l.latencyMsP99 })),
      },
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
  const echoAt = (c: number, durationSec?: number, warmupSec?: number) =>
    ctx.load({
      label: `ceiling POST /echo c=${c}`,
      url: `${baseUrl}/echo`,
      connections: c,
      durationSec,
      warmupSec,
      requestsForConnection: distinctKeyWrites({ path: '/echo' }),
    });
  const echo = await echoAt(connections, undefined, ctx.settings.warmupSec);
  assertValidCeiling(echo);
  const sweepSec = ctx.settings.sweepDurationSec;
  const pingByConnections = await measureSweep(ctx, ping, (c) =>
    ctx.load({
      label: `ceiling GET /ping c=${c}`,
      url: `${baseUrl}/ping`,
      connections: c,
      durationSec: sweepSec,
    }),
  );
  const echoByConnections = await measureSweep(ctx, echo, (c) => echoAt(c, sweepSec));
  return {
    pingByConnections,
    echo,
    echoByConnections,
    parsing: await measureParsing(ctx, baseUrl),
  };
}

/** The body-parsing ceiling: the same request generators as peerkv's writes and reads. */
async function measureParsing(ctx: BaseContext, baseUrl: string): Promise<Ceilings['parsing']> {
  const connections = ctx.settings.connectionsDefault;
  // The full run's duration (30 s); quick mode's 1 s keeps it within its 60 s budget.
  const durationSec = ctx.settings.sweepDurationSec;
  const writes = await ctx.load({
    label: `ceiling parsing POST /store c=${connections}`,
    url: `${baseUrl}/store`,
    connections,
    durationSec,
    requestsForConnection: distinctKeyWrites({ path: '/store', keyPrefix: 'ceiling' }),
  });
  assertValidCeiling(writes);
  const reads = await ctx.load({
    label: `ceiling parsing GET /store/key c=${connections}`,
    url: `${baseUrl}/store/key`,
    connections,
    durationSec,
    requests: randomExistingKeyReads({
      path: '/store/key',
      // The keys the single-node case preloads and reads (k0..k9999).
      keyCount: preloadedKeys,
      random: createSeededRandom(connections),
    }),
  });
  assertValidCeiling(reads);
  return { writes, reads };
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
    ctx.report.addNote(
      ceilingGroup,
      'The body-parsing ceiling (issue 14) is `POST /store` and `GET /store/key` on this server: ' +
        'it reads and `JSON.parse`s the very bodies the peerkv write and read cases send and ' +
        'answers a small JSON object (`{"key","version"}`, `{"value"}` of the preloaded size), ' +
        'the work every JSON front end must do. Writes and reads of one node and the writes of ' +
        'the 3-node cluster are also reported against it.',
    );
    return { ceilings, results: ceilingRows(ceilings, rssBytes) };
  } finally {
    await ctx.processes.stop(server);
  }
}
