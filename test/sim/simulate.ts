// One simulated schedule, start to finish: N nodes on virtual time and a simulated network, the
// seed's client ops and faults, then a final heal and the chaos checker's checks
// (test/chaos/checker.ts) on the final state, plus the step invariants (test/sim/invariants.ts).
// Everything — values, versions, message order, timings — follows from the seed, so the trace
// of a seed is the same, byte for byte, on every run.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PeerkvError } from '../../src/errors.ts';
import { formatVersion } from '../../src/version.ts';
import { checkRun } from '../chaos/checker.ts';
import type { OpRecord, ReadResult } from '../chaos/history.ts';
import { canonical, integrityCheck } from '../chaos/observe.ts';
import type { OpStep } from '../chaos/schedule.ts';
import { Invariants, type SimViolation } from './invariants.ts';
import { Network } from './network.ts';
import { stream } from './prng.ts';
import {
  CLOCK_JUMP_MS_MAX_DEFAULT,
  describeFault,
  generateSchedule,
  type SimFault,
  type SimStep,
} from './schedule.ts';
import { type SimConfig, type SimContext, SimNode, simUrl } from './sim-node.ts';
import { snapshotOf } from './snapshot.ts';
import { Trace } from './trace.ts';
import { VirtualTime } from './virtual-time.ts';

export interface SimOptions {
  readonly seed: number;
  readonly nodes: number;
  /** Virtual ms of client ops and faults, before the final heal. */
  readonly durationMs: number;
  /** Virtual ms the cluster has to converge after the final heal. */
  readonly convergeMsMax: number;
  /** Clock jumps are drawn from ±this (a node's clock ends at most twice this off). */
  readonly clockJumpMsMax?: number;
  /**
   * The nodes' --removed-member-hold (default an hour: longer than a schedule, so no removal
   * is closed, and every removed node is added back at the final heal). Shorter, removals are
   * closed during the run and a node closed when the schedule ends is retired.
   */
  readonly removedMemberHoldMs?: number;
  /** Where the nodes' data dirs go (a fresh dir per schedule under it). */
  readonly rootDir: string;
}

export interface SimResult {
  readonly seed: number;
  readonly violations: readonly SimViolation[];
  readonly trace: readonly string[];
  readonly ops: number;
  readonly faults: number;
  readonly events: number;
  readonly virtualMs: number;
  /** Virtual ms from the final heal to convergence (undefined: it did not converge). */
  readonly convergedAfterMs: number | undefined;
  /** Tombstones and expired entries the nodes removed past their horizons, in all. */
  readonly tombstonesRemoved: number;
}

export const REMOVED_MEMBER_HOLD_MS_DEFAULT = 3_600_000;

export const DEFAULT_OPTIONS = {
  nodes: 3,
  durationMs: 60_000,
  convergeMsMax: 120_000,
} as const;

/** The directory simulated nodes live in: memory-backed where the machine has one. */
export function defaultRootDir(): string {
  const base = process.platform === 'linux' ? '/dev/shm' : tmpdir();
  try {
    return mkdtempSync(join(base, 'peerkv-sim-'));
  } catch {
    // No /dev/shm here (a container without it): the disk is slower but works the same.
    return mkdtempSync(join(tmpdir(), 'peerkv-sim-'));
  }
}

const CONVERGE_POLL_MS = 1_000;
/** How long the final heal waits for the member lists to agree before adding nodes back. */
const MEMBERS_AGREE_MS_MAX = 30_000;
/** How far one node's clock may be off (test/chaos/checker.ts allows 125 s between two). */
const CLOCK_OFFSET_MS_MAX = 60_000;
/** The digest recount (hashing every row) runs every few steps; the other checks every step. */
const DIGEST_EVERY_STEPS = 4;

export async function simulate(options: SimOptions): Promise<SimResult> {
  const sim = new Simulation(options);
  try {
    return await sim.run();
  } finally {
    sim.teardown();
  }
}

class Simulation {
  readonly #options: SimOptions;
  readonly #time = new VirtualTime();
  readonly #trace = new Trace(this.#time);
  readonly #network: Network;
  readonly #nodes: SimNode[];
  readonly #invariants: Invariants;
  readonly #dir: string;
  readonly #ops: OpRecord[] = [];
  readonly #pending = new Map<number, { step: OpStep; startMs: number; node: number }>();
  /**
   * Nodes retired at the final heal: removed, and closed by some member (its writes are no
   * longer taken), so an operator rebuilds them rather than add them back. They stay down
   * and out of the checks; their writes no other node ever held may be lost.
   */
  readonly #retired = new Set<number>();
  readonly #steps: SimStep[];
  readonly #clockJumpMsMax: number;

  constructor(options: SimOptions) {
    this.#options = options;
    this.#clockJumpMsMax = options.clockJumpMsMax ?? CLOCK_JUMP_MS_MAX_DEFAULT;
    const config: SimConfig = {
      seed: options.seed,
      nodes: options.nodes,
      pingIntervalMs: 1_000,
      timeoutMs: 2_000,
      antiEntropyIntervalMs: 10_000,
      sweepIntervalMs: 1_000,
      tombstoneGraceMs: 5_000,
      removedMemberHoldMs: options.removedMemberHoldMs ?? REMOVED_MEMBER_HOLD_MS_DEFAULT,
      valueBytesMax: 1024 * 1024,
      epochWallMs: Date.UTC(2026, 0, 1),
    };
    this.#network = new Network(this.#time, stream(options.seed, 'network'), {
      nodes: options.nodes,
      timeoutMs: config.timeoutMs,
      delayMsMin: 1,
      delayMsMax: 30,
    });
    this.#invariants = new Invariants(options.nodes);
    this.#dir = join(options.rootDir, `seed-${options.seed}`);
    rmSync(this.#dir, { recursive: true, force: true });
    mkdirSync(this.#dir, { recursive: true });
    const ctx: SimContext = {
      config,
      time: this.#time,
      network: this.#network,
      logger: (node) => this.#trace.logger(node),
      templateDir: join(options.rootDir, 'empty'),
      onFreshPeer: (from, to, cursor) => this.#invariants.noteFreshPeer(from, to, cursor),
      onRefused: (peer, key, version) => this.#invariants.noteRefused(peer, key, version),
    };
    this.#nodes = Array.from(
      { length: options.nodes },
      (_, i) => new SimNode(ctx, i, join(this.#dir, `n${i}`)),
    );
    this.#steps = generateSchedule({
      seed: options.seed,
      nodes: options.nodes,
      durationMs: options.durationMs,
      opGapMsMax: 1_000,
      faultGapMsMax: 8_000,
      clockJumpMsMax: this.#clockJumpMsMax,
    });
  }

  async run(): Promise<SimResult> {
    const { seed, nodes, durationMs } = this.#options;
    this.#trace.note(`seed ${seed}: ${nodes} nodes, ${durationMs} ms, ${this.#steps.length} steps`);
    for (const node of this.#nodes) node.start();
    for (const step of this.#steps) {
      this.#time.at(step.atMs, () => {
        if (step.kind === 'op') this.#op(step);
        else this.#fault(step.fault);
        this.#invariants.check(
          this.#nodes,
          this.#time.nowMs,
          step.index % DIGEST_EVERY_STEPS === 0,
        );
      });
    }
    await this.#time.runUntil(durationMs);
    const convergedAfterMs = await this.#finalHeal();
    const violations = this.#check(convergedAfterMs !== undefined);
    for (const violation of violations)
      this.#trace.note(`VIOLATION ${violation.check}: ${violation.message}`);
    const tombstonesRemoved = this.#nodes.reduce((sum, node) => sum + node.tombstonesRemoved, 0);
    this.#trace.note(`tombstones removed past the horizon: ${tombstonesRemoved}`);
    return {
      seed,
      violations,
      trace: this.#trace.lines,
      ops: this.#ops.length,
      faults: this.#steps.length - this.#ops.length,
      events: this.#time.eventsRun,
      virtualMs: this.#time.nowMs,
      convergedAfterMs,
      tombstonesRemoved,
    };
  }

  teardown(): void {
    for (const node of this.#nodes) node.crash();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #op(step: OpStep): void {
    const node = this.#nodes[step.node]!;
    const run = node.running;
    const startMs = this.#time.nowMs;
    const label = `op ${step.opId} ${step.op} ${step.key}${step.ttlSeconds ? ` ttl=${step.ttlSeconds}s` : ''}${step.conditional ? ' (cas)' : ''} on n${step.node}`;
    const record = (fields: Omit<OpRecord, 'step' | 'nodeRun' | 'startMs' | 'endMs'>) => {
      this.#ops.push({ step, nodeRun: node.runs, startMs, endMs: this.#time.nowMs, ...fields });
      const detail =
        fields.version ?? fields.error ?? (fields.read ? JSON.stringify(fields.read) : '');
      this.#trace.note(`${label}: ${fields.outcome} ${detail}`);
    };
    if (!run) {
      record({ outcome: 'failed', error: 'node down (connection refused)' });
      return;
    }
    if (step.op === 'get') {
      const entry = run.store.getLive(step.key);
      const read: ReadResult = entry
        ? {
            found: true,
            value: JSON.parse(entry.valueJson!),
            version: formatVersion(entry.version),
            ...(entry.expiresAt == null ? {} : { expiresAt: entry.expiresAt }),
          }
        : { found: false };
      record({ outcome: 'ack', status: entry ? 200 : 404, read });
      return;
    }
    const current = step.conditional ? run.store.getLive(step.key) : undefined;
    const condition = step.conditional
      ? current
        ? { kind: 'match' as const, version: current.version }
        : { kind: 'absent' as const }
      : undefined;
    const conditionText = step.conditional
      ? { condition: current ? formatVersion(current.version) : '*' }
      : {};
    const expiry =
      step.ttlSeconds === undefined
        ? {}
        : { expiresAt: Math.floor(node.wallMs() + step.ttlSeconds * 1000) };
    const owner = run.owner;
    this.#pending.set(step.opId, { step, startMs, node: step.node });
    node
      .write({
        kind: 'local',
        key: step.key,
        valueJson: step.op === 'put' ? JSON.stringify(step.value) : null,
        ...expiry,
        ...(condition ? { condition } : {}),
      })
      .then(
        (result) => {
          if (!owner.alive || !this.#pending.delete(step.opId)) return;
          if (result.refused) {
            record({ outcome: 'failed', status: 412, error: 'condition failed', ...conditionText });
            return;
          }
          const version = formatVersion(result.version);
          record({ outcome: 'ack', status: 200, version, ...expiry, ...conditionText });
        },
        (error: unknown) => {
          if (!owner.alive || !this.#pending.delete(step.opId)) return;
          const message = error instanceof Error ? error.message : String(error);
          record({ outcome: 'failed', status: 503, error: message, ...conditionText });
        },
      );
  }

  #fault(fault: SimFault): void {
    this.#trace.note(`FAULT ${describeFault(fault)}`);
    const network = this.#network;
    const all = this.#nodes.map((node) => node.index);
    switch (fault.type) {
      case 'crash': {
        this.#crash(fault.node);
        this.#time.at(fault.downMs, () => this.#restart(fault.node));
        return;
      }
      case 'clock-jump': {
        const node = this.#nodes[fault.node]!;
        const offset = node.clockOffsetMs + fault.deltaMs;
        // Two clocks stay within 120 s of each other: the checker allows 125 s of skew.
        const offsetMax = Math.min(2 * this.#clockJumpMsMax, CLOCK_OFFSET_MS_MAX);
        node.clockOffsetMs = Math.max(-offsetMax, Math.min(offsetMax, offset));
        return;
      }
      case 'drift':
        this.#nodes[fault.node]!.setDrift(fault.ppm);
        return;
      case 'isolate':
        for (const other of all) {
          if (other === fault.node) continue;
          network.link(fault.node, other).cut = true;
          network.link(other, fault.node).cut = true;
        }
        return;
      case 'cut':
        network.link(fault.from, fault.to).cut = true;
        return;
      case 'split':
        for (const a of fault.side) {
          for (const b of all.filter((i) => !fault.side.includes(i))) {
            network.link(a, b).cut = true;
            network.link(b, a).cut = true;
          }
        }
        return;
      case 'flaky': {
        const link = network.link(fault.from, fault.to);
        link.dropRate = fault.dropRate;
        link.duplicateRate = fault.duplicateRate;
        return;
      }
      case 'slow':
        network.link(fault.from, fault.to).slowMsMax = fault.slowMsMax;
        return;
      case 'heal':
        network.healAll();
        return;
      case 'remove':
        this.#removeMember(fault.by, fault.node);
        return;
      case 'add':
        void this.#addMember(fault.by, fault.node);
        return;
    }
  }

  /** An operator's DELETE /cluster/members/<node id> on `by`; refusals are traced. */
  #removeMember(by: number, index: number): void {
    const run = this.#nodes[by]!.running;
    if (!run) {
      this.#trace.note(`remove n${index} on n${by}: failed (node down)`);
      return;
    }
    try {
      const row = run.members.service().remove(this.#nodes[index]!.nodeId);
      this.#trace.note(`remove n${index} on n${by}: removed at ${row.version}`);
    } catch (error) {
      this.#trace.note(`remove n${index} on n${by}: refused ${describeError(error)}`);
    }
  }

  /** An operator's POST /cluster/members {"url"} on `by`: true once it answered. */
  async #addMember(by: number, index: number): Promise<boolean> {
    const run = this.#nodes[by]!.running;
    if (!run) {
      this.#trace.note(`add n${index} on n${by}: failed (node down)`);
      return false;
    }
    const closer = this.#closedBy(index);
    if (closer !== undefined) {
      // The operator sees the removal closed (GET /cluster, the log) and does not add it back.
      this.#trace.note(`add n${index} on n${by}: skipped (closed on n${closer})`);
      return false;
    }
    const owner = run.owner;
    try {
      const added = await run.members.service().add(simUrl(index));
      if (owner.alive) this.#trace.note(`add n${index} on n${by}: added ${added.added}`);
      return true;
    } catch (error) {
      if (owner.alive) this.#trace.note(`add n${index} on n${by}: failed ${describeError(error)}`);
      return false;
    }
  }

  /** A running node that closed the removal of node `index` (its writes no longer taken), if any. */
  #closedBy(index: number): number | undefined {
    const id = this.#nodes[index]!.nodeId;
    return this.#nodes.find((node) => node.running?.removed.isClosed(id))?.index;
  }

  #crash(index: number): void {
    const node = this.#nodes[index]!;
    if (!node.running) return;
    // What the next start will read from disk: the persisted digest must equal the rows.
    this.#invariants.recount([node], this.#time.nowMs);
    node.crash();
    for (const [opId, pending] of this.#pending) {
      if (pending.node !== index) continue;
      this.#pending.delete(opId);
      this.#ops.push({
        step: pending.step,
        nodeRun: node.runs,
        startMs: pending.startMs,
        endMs: this.#time.nowMs,
        outcome: 'unknown',
        error: 'node crashed before answering',
      });
      this.#trace.note(`op ${opId} on n${index}: unknown (crashed before answering)`);
    }
  }

  #restart(index: number): void {
    const node = this.#nodes[index]!;
    if (node.running || this.#retired.has(index)) return;
    this.#trace.note(`restart n${index}`);
    node.start();
  }

  /** Heals every link, restarts every node, and waits (virtual time) for equal content. */
  async #finalHeal(): Promise<number | undefined> {
    const healAtMs = this.#time.nowMs;
    this.#trace.note('FINAL heal every link, restart every node');
    this.#network.healAll();
    for (const node of this.#nodes) if (!node.running) this.#restart(node.index);
    await this.#addBackRemoved(healAtMs);
    while (this.#time.nowMs - healAtMs < this.#options.convergeMsMax) {
      await this.#time.runUntil(this.#time.nowMs + CONVERGE_POLL_MS);
      this.#invariants.check(this.#nodes, this.#time.nowMs, false);
      if (this.#converged()) {
        this.#trace.note(`converged ${this.#time.nowMs - healAtMs} ms after the final heal`);
        return this.#time.nowMs - healAtMs;
      }
    }
    this.#trace.note('did not converge');
    return undefined;
  }

  /**
   * Once the member lists agree (the removals have spread), every node some list says removed
   * is added back, by the first other node, as an operator would after the heal.
   */
  async #addBackRemoved(healAtMs: number): Promise<void> {
    const removed = () =>
      this.#nodes.filter(
        (node) =>
          !this.#retired.has(node.index) &&
          this.#nodes.some((other) => other.isRemoved(node.nodeId)),
      );
    if (removed().length === 0) return;
    while (!this.#membersAgree() && this.#time.nowMs - healAtMs < MEMBERS_AGREE_MS_MAX) {
      await this.#time.runUntil(this.#time.nowMs + CONVERGE_POLL_MS);
    }
    // Nodes some member closed are retired first: an operator rebuilds them, and adds the
    // others back through nodes that are still in the cluster.
    for (const node of removed()) {
      const closer = this.#closedBy(node.index);
      if (closer === undefined) continue;
      this.#trace.note(`FINAL n${node.index} retired (its removal closed on n${closer})`);
      this.#retired.add(node.index);
      this.#crash(node.index);
    }
    for (const node of removed()) {
      const others = this.#live().filter((other) => other !== node);
      const adder = others.find((other) => !other.isRemoved(other.nodeId)) ?? others[0]!;
      this.#trace.note(`FINAL n${adder.index} adds n${node.index} back`);
      let answered = false;
      void this.#addMember(adder.index, node.index).then((ok) => {
        answered = ok;
      });
      const startMs = this.#time.nowMs;
      await this.#time.runUntil(startMs + 2 * CONVERGE_POLL_MS, () => answered);
    }
  }

  /** The nodes that were not retired. */
  #live(): SimNode[] {
    return this.#nodes.filter((node) => !this.#retired.has(node.index));
  }

  /** A member row of a node still in the cluster that says it is removed. */
  #removedRows(node: SimNode) {
    const retired = new Set([...this.#retired].map((index) => this.#nodes[index]!.nodeId));
    return node.memberRows().filter((row) => row.state === 'removed' && !retired.has(row.nodeId));
  }

  /** Every node holds the same member list. */
  #membersAgree(): boolean {
    const lists = this.#live().map((node) => JSON.stringify(node.memberRows()));
    return lists.every((list) => list === lists[0]);
  }

  #converged(): boolean {
    if (!this.#membersAgree()) return false;
    const live = this.#live();
    if (live.some((node) => this.#removedRows(node).length > 0)) return false;
    const hashes = live.map((node) => node.running!.store.digest.root());
    if (!hashes.every((hash) => hash === hashes[0])) return false;
    const texts = live.map((node) => canonical(snapshotOf(node)));
    return texts.every((text) => text === texts[0]);
  }

  /**
   * The ops the checker judges: a retired node's reads, and its writes no other node ever
   * held, are left out (they went with it, as they would with a node rebuilt from its peers).
   */
  #judgedOps(): OpRecord[] {
    if (this.#retired.size === 0) return this.#ops;
    const held = new Set<string>();
    for (const node of this.#live()) for (const version of node.seenVersions) held.add(version);
    return this.#ops.filter((op) => {
      if (!this.#retired.has(op.step.node)) return true;
      if (op.step.op === 'get') return false;
      return op.outcome !== 'ack' || (op.version !== undefined && held.has(op.version));
    });
  }

  #check(converged: boolean): SimViolation[] {
    const violations: SimViolation[] = [];
    for (const error of this.#network.stats.internalErrors) {
      violations.push({ check: 'internal-error', message: error });
    }
    if (!this.#membersAgree()) {
      violations.push({ check: 'membership', message: 'the member lists differ at the end' });
    }
    for (const node of this.#live()) {
      for (const row of this.#removedRows(node)) {
        violations.push({
          check: 'membership',
          message: `n${node.index} holds ${row.nodeId} removed at ${row.version} after it was added back`,
        });
      }
    }
    this.#invariants.recount(this.#nodes, this.#time.nowMs);
    const live = this.#live();
    const snapshots = live.map((node) => snapshotOf(node));
    const nowWallMs = live[0]!.wallMs();
    for (const node of this.#nodes) node.crash();
    const integrity = this.#nodes.map((node) => integrityCheck(node.dataDir));
    const ops = [...this.#judgedOps()].sort((a, b) => a.step.opId - b.step.opId);
    const history = {
      ops,
      incidents: [],
      epochMs: this.#nodes[0]!.wallMs() - this.#time.nowMs,
      opsById: () => new Map(ops.map((op) => [op.step.opId, op])),
    };
    const checked = checkRun(history, { converged, snapshots, integrity }, nowWallMs);
    for (const violation of checked) {
      violations.push({
        check: violation.check,
        message: violation.message,
        ...(violation.key === undefined ? {} : { key: violation.key }),
      });
    }
    return [...this.#invariants.violations, ...violations];
  }
}

function describeError(error: unknown): string {
  if (error instanceof PeerkvError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
