// The chaos checker's main function: draw the schedule from the seed, start the proxied cluster,
// run the schedule, heal and converge, check, report. Used by the CLI (test/chaos/run.ts) and by
// test/integration/chaos-short.test.ts; everything it starts is cleaned up before it returns.
import fsp from 'node:fs/promises';
import { ChaosCluster } from './chaos-cluster.ts';
import { checkRun, type Violation } from './checker.ts';
import { executeSchedule } from './executor.ts';
import { finalize } from './finalize.ts';
import { History } from './history.ts';
import type { ChaosOptions } from './options.ts';
import { type ChaosSummary, formatSummary, formatViolations, summarize } from './report.ts';
import { generateSchedule } from './schedule.ts';

export interface ChaosResult {
  readonly summary: ChaosSummary;
  readonly violations: readonly Violation[];
  /** The summary as printed, plus the failure report when there are violations. */
  readonly report: string;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const schedule = generateSchedule({
    seed: options.seed,
    durationMs: options.durationSeconds * 1_000,
    nodes: options.nodes,
    opsPerSecond: options.opsPerSecond,
    faultGapMs: options.faultGapMs,
    memberFaults: options.memberFaults,
  });
  const faultSteps = schedule.steps.filter((step) => step.kind === 'fault').length;
  options.log(
    `chaos seed=${options.seed}: ${schedule.steps.length} steps (${faultSteps} faults) over ${options.durationSeconds}s on ${options.nodes} nodes`,
  );
  const cluster = await ChaosCluster.start({
    nodes: options.nodes,
    pingfreqSeconds: options.pingfreqSeconds,
    timeoutSeconds: options.timeoutSeconds,
    tombstoneGraceSeconds: options.tombstoneGraceSeconds,
    seed: options.seed,
  });
  try {
    options.log(`nodes up: ${cluster.cluster.urls.join(' ')} (dir ${cluster.cluster.dir})`);
    const history = new History();
    await executeSchedule({ schedule, cluster, history, options });
    const final = await finalize({
      cluster,
      history,
      convergeTimeoutMs: options.convergeTimeoutMs,
      log: options.log,
    });
    const violations = checkRun(history, final);
    const summary = summarize(schedule, history, final, cluster, violations);
    let report = formatSummary(summary);
    if (violations.length > 0) {
      report += `\n\n${formatViolations(schedule, history, final, cluster, violations)}`;
    }
    if (options.historyPath !== undefined)
      await fsp.writeFile(options.historyPath, history.toJsonLines());
    if (options.jsonPath !== undefined) {
      await fsp.writeFile(options.jsonPath, `${JSON.stringify(summary, null, 2)}\n`);
    }
    return { summary, violations, report };
  } finally {
    await cluster.close(options.keepDirs);
  }
}
