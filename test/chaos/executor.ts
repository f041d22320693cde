// Runs a schedule against a ChaosCluster in real time: client ops at their offsets with bounded
// concurrency (a late op waits for a slot, it is never skipped), and faults one at a time in
// their own lane (a restart waits for the node to be ready before the next fault runs).
import { httpRequest, postJson } from '../helpers/http.ts';
import type { ExitInfo } from '../helpers/node-process.ts';
import type { ChaosCluster } from './chaos-cluster.ts';
import { performOp } from './client.ts';
import type { FaultResult, History } from './history.ts';
import type { ChaosOptions } from './options.ts';
import { describeStep, type FaultStep, type OpStep, type Schedule } from './schedule.ts';

const KILL_WAIT_MS = 5_000;
/** Longer than a node's own shutdown grace (limits.shutdownGraceMs, 10 s) plus closing up. */
const SIGTERM_WAIT_MS = 25_000;
const PROGRESS_EVERY_MS = 10_000;

export interface ExecuteContext {
  readonly schedule: Schedule;
  readonly cluster: ChaosCluster;
  readonly history: History;
  readonly options: ChaosOptions;
}

export class ChaosAborted extends Error {
  override readonly name = 'ChaosAborted';
}

/** A node that would not start: the schedule stops, the run reports it. */
class NodeStartFailed extends Error {
  override readonly name = 'NodeStartFailed';
}

export async function executeSchedule(ctx: ExecuteContext): Promise<void> {
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  ctx.options.signal?.addEventListener('abort', onAbort, { once: true });
  const baseMs = ctx.history.nowMs();
  const progress = setInterval(() => logProgress(ctx, baseMs), PROGRESS_EVERY_MS);
  try {
    const ops = ctx.schedule.steps.filter((s): s is OpStep => s.kind === 'op');
    const faults = ctx.schedule.steps.filter((s): s is FaultStep => s.kind === 'fault');
    await Promise.all([
      runOps(ctx, ops, baseMs, stop.signal),
      runFaults(ctx, faults, baseMs, stop),
    ]);
  } finally {
    clearInterval(progress);
    ctx.options.signal?.removeEventListener('abort', onAbort);
  }
  if (ctx.options.signal?.aborted) throw new ChaosAborted('chaos run aborted');
}

function logProgress(ctx: ExecuteContext, baseMs: number): void {
  const ops = ctx.history.ops;
  const acked = ops.filter((o) => o.outcome === 'ack').length;
  const unknown = ops.filter((o) => o.outcome === 'unknown').length;
  const seconds = ((ctx.history.nowMs() - baseMs) / 1_000).toFixed(0);
  const up = ctx.cluster.runningCount();
  ctx.options.log(
    `t=${seconds}s ops=${ops.length} acked=${acked} unknown=${unknown} faults=${ctx.history.faults.length} up=${up}/${ctx.cluster.size}`,
  );
}

/** Resolves at `history` time `atMs`, or at once when `signal` is aborted. */
function sleepUntil(history: History, atMs: number, signal: AbortSignal): Promise<void> {
  const waitMs = atMs - history.nowMs();
  if (waitMs <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, waitMs);
    signal.addEventListener('abort', done, { once: true });
  });
}

async function runOps(
  ctx: ExecuteContext,
  steps: readonly OpStep[],
  baseMs: number,
  signal: AbortSignal,
): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  for (const step of steps) {
    await sleepUntil(ctx.history, baseMs + step.atMs, signal);
    while (inFlight.size >= ctx.options.concurrency) await Promise.race(inFlight);
    if (signal.aborted) break;
    ctx.history.noteDispatchLag(ctx.history.nowMs() - baseMs - step.atMs);
    const running: Promise<void> = runOp(ctx, step).finally(() => inFlight.delete(running));
    inFlight.add(running);
  }
  await Promise.all(inFlight);
}

async function runOp(ctx: ExecuteContext, step: OpStep): Promise<void> {
  const node = ctx.cluster.node(step.node);
  const nodeRun = ctx.cluster.runs[step.node]!;
  const startMs = ctx.history.nowMs();
  const answer = await performOp(node.url, step, ctx.options.clientTimeoutMs);
  ctx.history.addOp({ step, nodeRun, startMs, endMs: ctx.history.nowMs(), ...answer });
}

async function runFaults(
  ctx: ExecuteContext,
  steps: readonly FaultStep[],
  baseMs: number,
  stop: AbortController,
): Promise<void> {
  for (const step of steps) {
    await sleepUntil(ctx.history, baseMs + step.atMs, stop.signal);
    if (stop.signal.aborted) return;
    const startMs = ctx.history.nowMs();
    let outcome: { result: FaultResult; detail?: string };
    try {
      outcome = await applyFault(ctx, step);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      ctx.history.addFault({ step, startMs, endMs: ctx.history.nowMs(), result: 'error', detail });
      ctx.options.log(`fault failed: ${describeStep(step)}: ${detail.split('\n')[0]}`);
      // A node that will not start ends the schedule; any other fault error is a checker bug.
      stop.abort();
      if (error instanceof NodeStartFailed) return;
      throw error;
    }
    ctx.history.addFault({ step, startMs, endMs: ctx.history.nowMs(), ...outcome });
  }
}

const done = { result: 'done' } as const;
const skipped = (detail: string) => ({ result: 'skipped', detail }) as const;

async function applyFault(
  ctx: ExecuteContext,
  step: FaultStep,
): Promise<{ result: FaultResult; detail?: string }> {
  const fault = step.fault;
  if (fault.type === 'partition') {
    ctx.cluster.applyLinks(fault.links, step.index);
    return done;
  }
  if (fault.type === 'heal') {
    ctx.cluster.healAll();
    return done;
  }
  if (fault.type === 'member-remove' || fault.type === 'member-add') {
    return changeMembership(ctx.cluster, fault.type, fault.node, fault.via);
  }
  const node = ctx.cluster.node(fault.node);
  if (fault.type === 'restart') {
    if (node.running) return skipped('already running');
    await startNode(ctx, fault.node, step.index, undefined);
    return done;
  }
  if (node.running && ctx.cluster.runningCount() <= 1) return skipped('last node up');
  if (fault.type === 'kill') {
    if (!node.running) return skipped('not running');
    node.kill('SIGKILL');
    await node.waitExit(KILL_WAIT_MS);
    return done;
  }
  if (node.running) await stopNode(ctx, fault.node, fault.signal, step.index);
  const env: Record<string, string> =
    fault.offsetMs === 0 ? {} : { PEERKV_CLOCK_OFFSET_MS: String(fault.offsetMs) };
  await startNode(ctx, fault.node, step.index, env);
  return done;
}

/** Stops a node by signal; a SIGTERM that does not end in exit code 0 is an incident. */
export async function stopNode(
  ctx: Pick<ExecuteContext, 'cluster' | 'history'>,
  index: number,
  signal: 'SIGKILL' | 'SIGTERM',
  stepIndex?: number,
): Promise<void> {
  const node = ctx.cluster.node(index);
  if (signal === 'SIGKILL') {
    node.kill('SIGKILL');
    await node.waitExit(KILL_WAIT_MS);
    return;
  }
  const startMs = ctx.history.nowMs();
  node.kill('SIGTERM');
  let exit: ExitInfo;
  try {
    exit = await node.waitExit(SIGTERM_WAIT_MS);
  } catch (error) {
    // Still running past its own shutdown grace and ours: force it, and report it.
    node.kill('SIGKILL');
    await node.waitExit(KILL_WAIT_MS);
    ctx.history.noteShutdown(SIGTERM_WAIT_MS);
    const detail = `no exit ${SIGTERM_WAIT_MS} ms after SIGTERM (${String(error).split('\n')[0]})\n${node.tail(20)}`;
    ctx.history.addIncident({
      node: index,
      atMs: startMs,
      what: 'unclean-shutdown',
      detail,
      stepIndex,
    });
    return;
  }
  ctx.history.noteShutdown(ctx.history.nowMs() - startMs);
  if (exit.code !== 0) {
    const detail = `SIGTERM ended in code ${exit.code} signal ${exit.signal}\n${node.tail(20)}`;
    ctx.history.addIncident({
      node: index,
      atMs: ctx.history.nowMs(),
      what: 'unclean-shutdown',
      detail,
      stepIndex,
    });
  }
}

/** Starts a stopped node (with new env if given); a node that will not start is an incident. */
export async function startNode(
  ctx: Pick<ExecuteContext, 'cluster' | 'history'>,
  index: number,
  stepIndex: number | undefined,
  env: Readonly<Record<string, string>> | undefined,
): Promise<void> {
  ctx.cluster.runs[index]! += 1;
  try {
    await ctx.cluster.node(index).restart(env === undefined ? {} : { env });
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    ctx.history.addIncident({
      node: index,
      atMs: ctx.history.nowMs(),
      what: 'start-failed',
      detail,
      stepIndex,
    });
    throw new NodeStartFailed(`node${index} did not start: ${detail}`, { cause: error });
  }
}

const MEMBER_CALL_TIMEOUT_MS = 5_000;

/**
 * Node `via` removes node `index` from the cluster, or adds it back, at the URL `via` calls it
 * at. A call that cannot be made (via down, the link cut, the node not known yet) is skipped:
 * the final heal adds back whatever is still removed.
 */
export async function changeMembership(
  cluster: ChaosCluster,
  type: 'member-remove' | 'member-add',
  index: number,
  via: number,
): Promise<{ result: FaultResult; detail?: string }> {
  const viaNode = cluster.node(via);
  if (!viaNode.running) return skipped(`node${via} not running`);
  const url = cluster.peerUrl(via, index);
  let added: unknown;
  try {
    const answer =
      type === 'member-remove'
        ? await httpRequest('DELETE', `${viaNode.url}/cluster/members/${encodeURIComponent(url)}`, {
            timeoutMs: MEMBER_CALL_TIMEOUT_MS,
          })
        : await postJson(
            `${viaNode.url}/cluster/members`,
            { url },
            { timeoutMs: MEMBER_CALL_TIMEOUT_MS },
          );
    if (answer.status !== 200) return skipped(`HTTP ${answer.status} ${answer.text.slice(0, 120)}`);
    added = (answer.body as { added?: unknown } | null)?.added;
  } catch (error) {
    return skipped(error instanceof Error ? error.message : String(error));
  }
  if (type === 'member-remove') cluster.removed.add(index);
  else cluster.removed.delete(index);
  // "added": false is the via node's word that the node was a member already (in its list);
  // kept in the history, since a removal it had not heard of yet could still undo it.
  if (type === 'member-add' && added === false) {
    return { result: 'done', detail: 'answered "added": false' };
  }
  return done;
}
