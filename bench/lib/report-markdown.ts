/**
 * Renders bench/REPORT.md from evaluated results: a header with the machine
 * and the run, then one table per group (value, ceiling, ratio, target) with
 * that group's charts under it. Pure: no I/O.
 */
import type { MachineInfo } from './machine.ts';
import type {
  CaseFailure,
  ChartEntry,
  EvaluatedResult,
  GroupNote,
  RunSummary,
  Target,
} from './report.ts';

export interface ReportInput {
  startedAt: Date;
  machine: MachineInfo;
  run: RunSummary;
  results: readonly EvaluatedResult[];
  charts: readonly ChartEntry[];
  notes?: readonly GroupNote[];
  failures: readonly CaseFailure[];
}

const GiB = 1024 ** 3;

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

type Align = 'left' | 'right' | 'center';

/** Emoji and East Asian wide characters take two columns, as biome counts them. */
const widePattern =
  /\p{Emoji_Presentation}|[\u1100-\u115F\u2E80-\uA4CF\uAC00-\uD7A3\uF900-\uFAFF\uFF00-\uFF60]/u;

function textWidth(text: string): number {
  let width = 0;
  for (const char of text) width += widePattern.test(char) ? 2 : 1;
  return width;
}

/** Plain text (an error message) made inert inside Markdown prose. */
function escapeMarkdown(text: string): string {
  return text.replace(/\n/g, ' ').replace(/[\\`*_[\]<>|#]/g, (char) => `\\${char}`);
}

/**
 * A table with padded, aligned columns: the layout `biome format` gives
 * Markdown tables, so the generated report passes `npm run lint` as written.
 */
export function renderTable(
  headers: readonly string[],
  aligns: readonly Align[],
  rows: readonly (readonly string[])[],
): string[] {
  const cells = [headers, ...rows].map((row) => row.map(cell));
  const widths = headers.map((_, c) => Math.max(3, ...cells.map((row) => textWidth(row[c] ?? ''))));
  const pad = (text: string, c: number): string => {
    const gap = ' '.repeat(widths[c]! - textWidth(text));
    return aligns[c] === 'right' ? gap + text : text + gap;
  };
  const line = (row: readonly string[]): string =>
    `| ${headers.map((_, c) => pad(row[c] ?? '', c)).join(' | ')} |`;
  const rule = headers.map((_, c) => {
    const dashes = widths[c]!;
    if (aligns[c] === 'right') return `${'-'.repeat(dashes - 1)}:`;
    if (aligns[c] === 'center') return `:${'-'.repeat(dashes - 2)}:`;
    return '-'.repeat(dashes);
  });
  return [line(cells[0]!), `| ${rule.join(' | ')} |`, ...cells.slice(1).map(line)];
}

export function formatNumber(value: number): string {
  const abs = Math.abs(value);
  // Whole numbers for big values; three decimals keep sub-millisecond latencies apart.
  const digits = Number.isInteger(value) || abs >= 100 ? 0 : abs >= 1 ? 2 : 3;
  return value.toLocaleString('en-US', { maximumFractionDigits: digits });
}

function withUnit(value: number, unit: string): string {
  return unit === '' ? formatNumber(value) : `${formatNumber(value)} ${unit}`;
}

function formatTarget(target: Target, unit: string): string {
  const op = target.op === '>=' ? '≥' : '≤';
  return target.on === 'ratio'
    ? `${op} ${target.threshold}× ceiling`
    : `${op} ${withUnit(target.threshold, unit)}`;
}

/** 0.44×; small ratios keep two significant digits (0.00013×) instead of showing 0.00×. */
function formatRatio(ratio: number): string {
  if (ratio !== 0 && Math.abs(ratio) < 0.01) return `${Number(ratio.toPrecision(2))}×`;
  return `${ratio.toFixed(2)}×`;
}

function formatMet(met: boolean | null): string {
  if (met === null) return '';
  return met ? '✅' : '❌';
}

function localTime(date: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  return `${day} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** How busy the machine was with other work: the noise in every number. */
function renderNoise(run: RunSummary): string[] {
  if (run.foreignCpuShare === undefined) return [];
  const load = (value: number | undefined): string =>
    value === undefined ? '?' : value.toFixed(1);
  return [
    `While this ran, other processes on the machine used ${(run.foreignCpuShare * 100).toFixed(0)} % ` +
      `of its CPU time (1-minute load average ${load(run.loadAverageStart)} at the start, ` +
      `${load(run.loadAverageEnd)} at the end); every ratio is measured against a ceiling ` +
      'taken in the same run, but a busy neighbour still makes single numbers noisy.',
    '',
  ];
}

function renderHeader(input: ReportInput): string[] {
  const { machine, run } = input;
  const elapsedSec = (run.elapsedMs ?? 0) / 1000;
  const budget =
    run.elapsedMsBudget === undefined
      ? ''
      : ` (budget ${run.elapsedMsBudget / 1000} s ${formatMet((run.elapsedMs ?? 0) <= run.elapsedMsBudget)})`;
  return [
    '# peerkv benchmarks',
    '',
    `Generated ${localTime(input.startedAt)} by \`${run.command}\`: ${run.mode} mode, ` +
      `${run.durationSec} s per measurement after ${run.warmupSec} s of warm-up; ` +
      `whole run ${elapsedSec.toFixed(1)} s${budget}.`,
    '',
    ...renderTable(
      ['Machine', ''],
      ['left', 'left'],
      [
        ['CPU', `${machine.cpuModel} × ${machine.cpuCount}`],
        ['Memory', `${(machine.memoryBytesTotal / GiB).toFixed(1)} GiB`],
        ['OS', machine.os],
        ['Node', machine.nodeVersion],
        ['Commit', machine.commit],
      ],
    ),
    '',
    ...renderNoise(run),
    'The load generator is autocannon, in the bench process; every server runs in its own ' +
      'process on 127.0.0.1; peerkv nodes run as a user runs them, `bin/peerkv.js` on the ' +
      'compiled `dist/` (built first when stale). **Ceiling** is the same measurement against a bare polka server ' +
      '(`bench/lib/ceiling-server.ts`) in the same run; **ratio** is value ÷ ceiling. ' +
      'Latencies are of 2xx responses, to the microsecond, of the requests sent once autocannon ' +
      'had built every connection: the first request of each connection it builds before the ' +
      'next waits on that build, not on the server (`LoadResult.latenciesLeftOut`, ' +
      '`bench/probes/read-tail.ts`). ' +
      'Raw numbers: `bench/results/`.',
    '',
  ];
}

function renderSummary(input: ReportInput): string[] {
  const judged = input.results.filter((r) => r.met !== null);
  const targets = judged.filter((r) => r.metric !== 'failed requests');
  const met = targets.filter((r) => r.met === true).length;
  const failed = input.failures.length;
  const failedRequests = judged.filter((r) => r.metric === 'failed requests');
  const runsWithFailures = failedRequests.filter((r) => r.met === false).length;
  return [
    '## Summary',
    '',
    `${input.results.length} results; targets: ${met} met ✅, ${targets.length - met} missed ❌; ` +
      `${failed} case${failed === 1 ? '' : 's'} failed to run${failed > 0 ? ' ❌' : ''}. ` +
      `Load runs with failed requests (non-2xx or errors): ${runsWithFailures} of ` +
      `${failedRequests.length}${runsWithFailures > 0 ? ' ❌' : ' ✅'}.`,
    '',
  ];
}

/**
 * Every result with a target, in one table under the summary: the headline.
 * The "no failed requests" checks of every load run are counted in the
 * summary instead of being listed here.
 */
function renderTargets(input: ReportInput): string[] {
  const judged = input.results.filter(
    (r) => r.target !== undefined && r.metric !== 'failed requests',
  );
  if (judged.length === 0) return [];
  const cells = judged.map((r) => [
    `${r.group}: ${r.name}`,
    r.metric,
    withUnit(r.value, r.unit),
    r.ceiling === undefined ? '—' : withUnit(r.ceiling, r.unit),
    r.ratio === null ? '—' : formatRatio(r.ratio),
    r.target ? formatTarget(r.target, r.unit) : '—',
    formatMet(r.met),
  ]);
  return [
    '## Targets',
    '',
    ...renderTable(
      ['Case', 'Metric', 'Value', 'Ceiling', 'Ratio', 'Target', 'Met'],
      ['left', 'left', 'right', 'right', 'right', 'left', 'center'],
      cells,
    ),
    '',
  ];
}

function renderGroup(group: string, input: ReportInput): string[] {
  const rows = input.results.filter((r) => r.group === group);
  const lines = [`## ${group}`, ''];
  if (rows.length > 0) {
    const cells = rows.map((r) => [
      r.name,
      r.metric,
      withUnit(r.value, r.unit),
      r.ceiling === undefined ? '—' : withUnit(r.ceiling, r.unit),
      r.ratio === null ? '—' : formatRatio(r.ratio),
      r.target ? formatTarget(r.target, r.unit) : '—',
      formatMet(r.met),
    ]);
    lines.push(
      ...renderTable(
        ['Case', 'Metric', 'Value', 'Ceiling', 'Ratio', 'Target', 'Met'],
        ['left', 'left', 'right', 'right', 'right', 'left', 'center'],
        cells,
      ),
    );
    lines.push('');
  }
  for (const note of (input.notes ?? []).filter((n) => n.group === group)) {
    lines.push(note.markdown, '');
  }
  for (const chart of input.charts.filter((c) => c.group === group)) {
    lines.push(`![${cell(chart.title)}](${chart.file})`, '');
  }
  return lines;
}

function renderFailures(failures: readonly CaseFailure[]): string[] {
  if (failures.length === 0) return [];
  return [
    '## Failed cases',
    '',
    ...failures.map((f) => `- **${escapeMarkdown(f.caseName)}**: ${escapeMarkdown(f.message)}`),
    '',
  ];
}

export function renderReportMarkdown(input: ReportInput): string {
  const groups = [
    ...new Set([
      ...input.results.map((r) => r.group),
      ...input.charts.map((c) => c.group),
      ...(input.notes ?? []).map((n) => n.group),
    ]),
  ];
  return [
    ...renderHeader(input),
    ...renderSummary(input),
    ...renderTargets(input),
    ...groups.flatMap((group) => renderGroup(group, input)),
    ...renderFailures(input.failures),
  ].join('\n');
}
