/**
 * Collects case results, judges them against their targets, and writes:
 *   bench/results/<YYYY-MM-DD>-<case>.json  raw results of one case
 *   bench/charts/<name>.svg                   charts (checked well-formed)
 *   bench/REPORT.md                           machine, one table per group, charts
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BenchError } from './bench-error.ts';
import type { LoadResult } from './load.ts';
import type { MachineInfo } from './machine.ts';
import { renderReportMarkdown } from './report-markdown.ts';
import { findXmlProblem } from './xml-check.ts';

export type { MachineInfo } from './machine.ts';

/** 'ratio' compares value ÷ ceiling; 'value' compares the absolute number. */
export interface Target {
  on: 'value' | 'ratio';
  op: '>=' | '<=';
  threshold: number;
}

export interface CaseResult {
  /** Report section, e.g. 'Ceiling (bare polka)' or 'Writes'. */
  group: string;
  /** Row label, e.g. 'GET /ping, 50 connections'. */
  name: string;
  /** e.g. 'throughput', 'latency p99', 'RSS'. */
  metric: string;
  value: number;
  /** e.g. 'req/s', 'ms', 'MiB'; '' for a plain count. */
  unit: string;
  /** The same metric on the bare polka server, if one applies. */
  ceiling?: number;
  target?: Target;
  /** The load run the number came from (kept in the raw JSON). */
  load?: LoadResult;
  /** Anything else worth keeping in the raw JSON (counters, timings); not shown in REPORT.md. */
  detail?: Record<string, unknown>;
}

export interface EvaluatedResult extends Omit<CaseResult, 'load'> {
  /** value ÷ ceiling, or null without a (non-zero) ceiling. */
  ratio: number | null;
  /** null without a target; false if the target needs a ratio and there is none. */
  met: boolean | null;
}

export interface ChartEntry {
  group: string;
  title: string;
  /** Path relative to bench/, e.g. 'charts/ceiling-throughput.svg'. */
  file: string;
}

/** A paragraph of Markdown shown under a group's table (how it was measured, what bounds it). */
export interface GroupNote {
  group: string;
  markdown: string;
}

export interface CaseFailure {
  caseName: string;
  message: string;
}

export interface RunSummary {
  mode: 'quick' | 'full';
  durationSec: number;
  warmupSec: number;
  command: string;
  /** Filled in by finish(). */
  elapsedMs?: number;
  elapsedMsBudget?: number;
  /** Share of all CPUs other processes used during the run (0..1), if known. */
  foreignCpuShare?: number;
  /** 1-minute load average at the start and at the end of the run. */
  loadAverageStart?: number;
  loadAverageEnd?: number;
}

export function evaluateResult(result: CaseResult): EvaluatedResult {
  const { load: _load, ...rest } = result;
  const ratio =
    result.ceiling !== undefined && result.ceiling !== 0 ? result.value / result.ceiling : null;
  let met: boolean | null = null;
  if (result.target) {
    const subject = result.target.on === 'ratio' ? ratio : result.value;
    met =
      subject !== null &&
      (result.target.op === '>='
        ? subject >= result.target.threshold
        : subject <= result.target.threshold);
  }
  return { ...rest, ratio, met };
}

/** YYYY-MM-DD in local time. */
export function localDate(date: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function fileSlug(name: string): string {
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
  if (slug === '') throw new BenchError('BAD_OPTION', `no file name in ${JSON.stringify(name)}`);
  return slug;
}

export class BenchReport {
  readonly #benchDir: string;
  readonly #startedAt: Date;
  readonly #machine: MachineInfo;
  readonly #run: RunSummary;
  readonly #results: EvaluatedResult[] = [];
  readonly #charts: ChartEntry[] = [];
  readonly #notes: GroupNote[] = [];
  readonly #failures: CaseFailure[] = [];

  constructor(options: {
    benchDir: string;
    startedAt: Date;
    machine: MachineInfo;
    run: RunSummary;
  }) {
    this.#benchDir = options.benchDir;
    this.#startedAt = options.startedAt;
    this.#machine = options.machine;
    this.#run = { ...options.run };
  }

  /** Adds a case's results and writes them to results/<date>-<case>.json. */
  async addCase(caseName: string, results: readonly CaseResult[]): Promise<EvaluatedResult[]> {
    const evaluated = results.map(evaluateResult);
    this.#results.push(...evaluated);
    const loads = [...new Set(results.flatMap((r) => (r.load ? [r.load] : [])))];
    const raw = {
      case: caseName,
      date: this.#startedAt.toISOString(),
      run: this.#run,
      machine: this.#machine,
      results: evaluated,
      loads,
    };
    const dir = join(this.#benchDir, 'results');
    await mkdir(dir, { recursive: true });
    const file = join(dir, `${localDate(this.#startedAt)}-${fileSlug(caseName)}.json`);
    await writeFile(file, `${JSON.stringify(raw, null, 2)}\n`);
    return evaluated;
  }

  /** Writes charts/<name>.svg (refusing malformed SVG) and links it under `group`. */
  async addChart(group: string, name: string, title: string, svg: string): Promise<string> {
    const problem = findXmlProblem(svg);
    if (problem !== null) throw new BenchError('BAD_OPTION', `chart ${name}: ${problem}`);
    const dir = join(this.#benchDir, 'charts');
    await mkdir(dir, { recursive: true });
    const file = `charts/${fileSlug(name)}.svg`;
    await writeFile(join(this.#benchDir, file), svg);
    this.#charts.push({ group, title, file });
    return file;
  }

  /** Adds a paragraph under `group`'s table in REPORT.md. */
  addNote(group: string, markdown: string): void {
    this.#notes.push({ group, markdown });
  }

  addFailure(caseName: string, err: unknown): void {
    const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    this.#failures.push({ caseName, message });
  }

  failureCount(): number {
    return this.#failures.length;
  }

  /** Renders and writes REPORT.md; returns its path. */
  async finish(
    elapsedMs: number,
    elapsedMsBudget?: number,
    noise: Pick<RunSummary, 'foreignCpuShare' | 'loadAverageStart' | 'loadAverageEnd'> = {},
  ): Promise<string> {
    this.#run.elapsedMs = elapsedMs;
    this.#run.elapsedMsBudget = elapsedMsBudget;
    Object.assign(this.#run, noise);
    const markdown = renderReportMarkdown({
      startedAt: this.#startedAt,
      machine: this.#machine,
      run: this.#run,
      results: this.#results,
      charts: this.#charts,
      notes: this.#notes,
      failures: this.#failures,
    });
    const file = join(this.#benchDir, 'REPORT.md');
    await writeFile(file, markdown);
    return file;
  }
}
