// What a run prints: the summary figures (also written as JSON with --json), and for a failure
// the seed, each violation with its schedule steps, the key's recorded history, the faults around
// it, and the warn/error lines the nodes logged at that time.
import fs from 'node:fs';
import type { ChaosCluster } from './chaos-cluster.ts';
import type { Violation } from './checker.ts';
import type { FinalState } from './finalize.ts';
import type { History, OpRecord } from './history.ts';
import { describeStep, faultKind, type Schedule } from './schedule.ts';

const VIOLATIONS_SHOWN_MAX = 20;
const VIOLATIONS_KEPT_MAX = 200;
const KEY_HISTORY_LINES = 12;
const CONTEXT_MS = 5_000;
const LOG_LINES_PER_NODE_MAX = 25;
const LOG_READ_BYTES_MAX = 64 * 1024 * 1024;
const PINO_WARN = 40;

export interface ChaosSummary {
  readonly seed: number;
  readonly nodes: number;
  readonly durationSeconds: number;
  readonly steps: number;
  readonly operations: {
    total: number;
    put: number;
    /** Puts with a TTL, compare-and-swaps, and compare-and-swaps refused with 412. */
    putTtl: number;
    putCas: number;
    casRefused: number;
    delete: number;
    get: number;
  };
  readonly acknowledged: number;
  readonly failed: number;
  /** Of the failed: refused before anything was sent (the node was down or restarting). */
  readonly refused: number;
  readonly unknown: number;
  readonly faults: Record<string, number>;
  readonly faultsSkipped: number;
  readonly proxyConnectionsRefused: number;
  readonly proxyConnectionsDropped: number;
  readonly convergeMsAfterHeal: number | null;
  readonly convergeMsAfterRestart: number | null;
  readonly dispatchLagMsMax: number;
  readonly sigtermShutdowns: number;
  readonly sigtermShutdownMsMax: number;
  readonly finalLiveKeys: number;
  readonly finalTombstones: number;
  /** Keys written in the run that no node holds any more: deleted and removed past the horizon. */
  readonly finalRemovedKeys: number;
  readonly violations: number;
  readonly violationList: readonly Violation[];
  readonly wallSeconds: number;
}

export function summarize(
  schedule: Schedule,
  history: History,
  final: FinalState,
  cluster: ChaosCluster,
  violations: readonly Violation[],
): ChaosSummary {
  const ops = history.ops;
  const count = (pred: (o: OpRecord) => boolean): number => ops.filter(pred).length;
  const faults: Record<string, number> = {};
  for (const f of history.faults) {
    if (f.result === 'done')
      faults[faultKind(f.step.fault)] = (faults[faultKind(f.step.fault)] ?? 0) + 1;
  }
  const proxy = cluster.proxyTotals();
  const snap = final.snapshots.find((s) => s !== undefined);
  const entries = snap === undefined ? [] : [...snap.entries.values()];
  const round = (ms: number | undefined): number | null =>
    ms === undefined ? null : Math.round(ms);
  return {
    seed: schedule.settings.seed,
    nodes: schedule.settings.nodes,
    durationSeconds: schedule.settings.durationMs / 1_000,
    steps: schedule.steps.length,
    operations: {
      total: ops.length,
      put: count((o) => o.step.op === 'put'),
      putTtl: count((o) => o.step.ttlSeconds !== undefined),
      putCas: count((o) => o.step.conditional === true),
      casRefused: count((o) => o.step.conditional === true && o.status === 412),
      delete: count((o) => o.step.op === 'delete'),
      get: count((o) => o.step.op === 'get'),
    },
    acknowledged: count((o) => o.outcome === 'ack'),
    failed: count((o) => o.outcome === 'failed'),
    refused: count((o) => o.outcome === 'failed' && o.status === undefined),
    unknown: count((o) => o.outcome === 'unknown'),
    faults,
    faultsSkipped: history.faults.filter((f) => f.result !== 'done').length,
    proxyConnectionsRefused: proxy.refused,
    proxyConnectionsDropped: proxy.dropped,
    convergeMsAfterHeal: round(
      final.convergedAtMs === undefined ? undefined : final.convergedAtMs - final.healAtMs,
    ),
    convergeMsAfterRestart: round(
      final.convergedAtMs === undefined
        ? undefined
        : Math.max(0, final.convergedAtMs - final.readyAtMs),
    ),
    dispatchLagMsMax: Math.round(history.dispatchLagMsMax),
    sigtermShutdowns: history.shutdownsGraceful,
    sigtermShutdownMsMax: Math.round(history.shutdownMsMax),
    finalLiveKeys: entries.filter((e) => !e.deleted).length,
    finalTombstones: entries.filter((e) => e.deleted).length,
    finalRemovedKeys: [
      ...new Set(ops.filter((o) => o.step.op !== 'get').map((o) => o.step.key)),
    ].filter((key) => snap !== undefined && !snap.entries.has(key)).length,
    violations: violations.length,
    violationList: violations.slice(0, VIOLATIONS_KEPT_MAX),
    wallSeconds: Math.round(history.nowMs() / 100) / 10,
  };
}

export function formatSummary(s: ChaosSummary): string {
  const faults = Object.entries(s.faults)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, n]) => `${kind}=${n}`)
    .join(' ');
  const converge =
    s.convergeMsAfterHeal === null
      ? 'never'
      : `${s.convergeMsAfterHeal} ms after the final heal (${s.convergeMsAfterRestart} ms after every node was back up)`;
  return [
    `chaos seed=${s.seed} nodes=${s.nodes} duration=${s.durationSeconds}s steps=${s.steps} wall=${s.wallSeconds}s`,
    `operations: ${s.operations.total} (put ${s.operations.put} of which ttl ${s.operations.putTtl} and cas ${s.operations.putCas} (412: ${s.operations.casRefused}), delete ${s.operations.delete}, get ${s.operations.get})`,
    `outcomes: acknowledged ${s.acknowledged}, failed ${s.failed} (refused ${s.refused}), unknown ${s.unknown}`,
    `faults: ${faults || 'none'} (skipped ${s.faultsSkipped}); proxy refused ${s.proxyConnectionsRefused}, dropped mid-request ${s.proxyConnectionsDropped}`,
    `converged: ${converge}`,
    `max dispatch lag ${s.dispatchLagMsMax} ms; ${s.sigtermShutdowns} SIGTERM shutdowns, slowest ${s.sigtermShutdownMsMax} ms`,
    `final: ${s.finalLiveKeys} live keys, ${s.finalTombstones} tombstones, ${s.finalRemovedKeys} keys removed past the horizon`,
    `violations: ${s.violations}`,
  ].join('\n');
}

/** The failure report: seed, violations with steps, key histories, faults and node log lines. */
export function formatViolations(
  schedule: Schedule,
  history: History,
  final: FinalState,
  cluster: ChaosCluster,
  violations: readonly Violation[],
): string {
  const lines = [`VIOLATIONS (seed ${schedule.settings.seed}): ${violations.length}`];
  for (const v of violations.slice(0, VIOLATIONS_SHOWN_MAX)) {
    lines.push(
      '',
      `[${v.check}]${v.key === undefined ? '' : ` key ${JSON.stringify(v.key)}`} ${v.message}`,
    );
    for (const index of v.steps) lines.push(`  at ${describeStep(schedule.steps[index]!)}`);
    if (v.key !== undefined) lines.push(...keyHistory(history, v.key, final));
  }
  if (violations.length > VIOLATIONS_SHOWN_MAX)
    lines.push('', `... and ${violations.length - VIOLATIONS_SHOWN_MAX} more`);
  const times = violations.flatMap((v) => v.steps.map((i) => schedule.steps[i]!.atMs));
  const fromMs = times.length > 0 ? Math.min(...times) - CONTEXT_MS : final.healAtMs - CONTEXT_MS;
  const toMs = times.length > 0 ? Math.max(...times) + CONTEXT_MS : history.nowMs();
  lines.push(
    '',
    `faults from t=${(fromMs / 1_000).toFixed(1)}s to t=${(toMs / 1_000).toFixed(1)}s:`,
  );
  for (const f of history.faults.filter((f) => f.endMs >= fromMs && f.startMs <= toMs)) {
    lines.push(
      `  ran t=${(f.startMs / 1_000).toFixed(2)}..${(f.endMs / 1_000).toFixed(2)}s ${f.result} ${describeStep(f.step)}${f.detail ? ` (${f.detail.split('\n')[0]})` : ''}`,
    );
  }
  lines.push(`  final heal at t=${(final.healAtMs / 1_000).toFixed(2)}s`);
  lines.push(...nodeLogLines(history, cluster, fromMs, toMs));
  return lines.join('\n');
}

function keyHistory(history: History, key: string, final: FinalState): string[] {
  const writes = history.ops.filter((o) => o.step.key === key && o.step.op !== 'get');
  const lines = [
    `  last ${Math.min(KEY_HISTORY_LINES, writes.length)} of ${writes.length} writes of the key:`,
  ];
  for (const o of writes.slice(-KEY_HISTORY_LINES)) {
    const detail = o.outcome === 'ack' ? o.version : (o.status ?? o.error);
    lines.push(
      `    t=${(o.startMs / 1_000).toFixed(2)}..${(o.endMs / 1_000).toFixed(2)}s op ${o.step.opId} ${o.step.op} node${o.step.node} run${o.nodeRun} ${o.outcome} ${detail ?? ''}`,
    );
  }
  final.snapshots.forEach((snap, i) => {
    const e = snap?.entries.get(key);
    const text =
      e === undefined
        ? 'nothing'
        : `${e.deleted ? 'tombstone' : `value ${JSON.stringify(e.value)?.slice(0, 60)}`} ${e.version}`;
    lines.push(`    final node${i}: ${snap === undefined ? '(unreadable)' : text}`);
  });
  return lines;
}

/** warn and error lines each node logged between `fromMs` and `toMs` (run time). */
function nodeLogLines(
  history: History,
  cluster: ChaosCluster,
  fromMs: number,
  toMs: number,
): string[] {
  const from = history.epochMs + fromMs;
  const to = history.epochMs + toMs;
  const lines: string[] = [];
  cluster.cluster.nodes.forEach((node, i) => {
    let text: string;
    try {
      const size = fs.statSync(node.logPath).size;
      text = size > LOG_READ_BYTES_MAX ? node.tail(200) : fs.readFileSync(node.logPath, 'utf8');
    } catch (error) {
      lines.push(
        `node${i} log unreadable: ${error instanceof Error ? error.message : String(error)}`,
      );
      return;
    }
    const picked = text.split('\n').filter((line) => {
      if (line.startsWith('--- ')) {
        // A run marker written by NodeProcess: "--- <ISO time> run <n>: <args>".
        const at = Date.parse(line.slice(4, line.indexOf(' ', 4)));
        return at >= from && at <= to;
      }
      if (!line.startsWith('{')) return line.length > 0; // stderr (a crash): always shown
      try {
        const entry = JSON.parse(line) as { level?: number; time?: number };
        return (
          (entry.level ?? 0) >= PINO_WARN && (entry.time ?? 0) >= from && (entry.time ?? 0) <= to
        );
      } catch {
        return true; // a line cut short by kill -9: show it
      }
    });
    lines.push(
      '',
      `node${i} (${node.logPath}) warn/error lines in the window:`,
      ...picked.slice(-LOG_LINES_PER_NODE_MAX),
    );
  });
  return lines;
}
