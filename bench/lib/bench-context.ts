/**
 * What a benchmark case receives and returns. A case lives in
 * bench/cases/<name>.ts, exports a BenchCase, and is listed in
 * bench/cases/index.ts; run.ts runs them in order after the ceilings.
 */
import type { LoadOptions, LoadResult } from './load.ts';
import type { ProcessGroup } from './processes.ts';
import type { BenchReport, CaseResult } from './report.ts';

export interface RunSettings {
  quick: boolean;
  /** Seconds of each measured load run (quick 3, full 30). */
  durationSec: number;
  /** Seconds of throw-away load before a case's first measurement. */
  warmupSec: number;
  /**
   * Seconds of secondary measurements: sweep points away from the default
   * connection count, background loads (quick 1, full = durationSec).
   */
  sweepDurationSec: number;
  /** Connection counts of concurrency sweeps. */
  connectionsSweep: readonly number[];
  /** Connections of single-point measurements. */
  connectionsDefault: number;
}

export interface Ceilings {
  /** Bare polka GET /ping, one run per count in settings.connectionsSweep. */
  pingByConnections: ReadonlyMap<number, LoadResult>;
  /** Bare polka POST /echo (small JSON body) at settings.connectionsDefault. */
  echo: LoadResult;
  /** Bare polka POST /echo, one run per count in settings.connectionsSweep. */
  echoByConnections: ReadonlyMap<number, LoadResult>;
  /**
   * The body-parsing ceiling (issue 14) at settings.connectionsDefault: polka
   * reading and JSON.parsing the same bodies as peerkv's POST /store writes
   * and GET /store/key reads, answering a small JSON object.
   */
  parsing: { writes: LoadResult; reads: LoadResult };
}

/** Load options with the run's duration filled in unless given. */
export type CaseLoadOptions = Omit<LoadOptions, 'durationSec'> & { durationSec?: number };

export interface BaseContext {
  settings: RunSettings;
  /** Start children here (they are stopped after each case, and on Ctrl-C). */
  processes: ProcessGroup;
  /** For charts: report.addChart(group, name, title, svg). */
  report: BenchReport;
  /** Absolute path of the repository (for src/main.ts and friends). */
  repoDir: string;
  /** runLoad with settings.durationSec unless the options say otherwise. */
  load(options: CaseLoadOptions): Promise<LoadResult>;
}

export interface BenchContext extends BaseContext {
  ceilings: Ceilings;
}

export interface BenchCase {
  /** Used for the results file name: results/<date>-<name>.json. */
  name: string;
  run(ctx: BenchContext): Promise<CaseResult[]>;
}
