/**
 * Small, readable SVG charts built as strings (no browser, no dependency):
 * line charts (linear or log x axis) and grouped bar charts, each with a
 * title, axis labels, ticks, grid lines and a legend. The y axis starts at 0.
 */
import { BenchError } from './bench-error.ts';

export interface ChartPoint {
  x: number;
  y: number;
}

export interface LineSeries {
  name: string;
  points: readonly ChartPoint[];
}

export interface LineChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly LineSeries[];
  /** 'log' for 1/10/50/200 connections or 10k/100k/1M keys; x must be > 0. */
  xScale?: 'linear' | 'log';
  width?: number;
  height?: number;
}

export interface BarSeries {
  name: string;
  /** One value per category, in the same order. */
  values: readonly number[];
}

export interface BarChartSpec {
  title: string;
  xLabel?: string;
  yLabel: string;
  categories: readonly string[];
  series: readonly BarSeries[];
  width?: number;
  height?: number;
}

/** Okabe-Ito: distinguishable with the common colour-vision deficiencies. */
const palette = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];
const seriesMax = palette.length;
const categoriesMax = 50;
const pointsMax = 1_000;
const fontFamily = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** 950, 1.2k, 45k, 1.5M: short labels for ticks and bars. */
export function formatCompact(value: number): string {
  const abs = Math.abs(value);
  const units: [number, string][] = [
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  for (const [size, suffix] of units) {
    if (abs >= size) return `${trimNumber(value / size)}${suffix}`;
  }
  return trimNumber(value);
}

function trimNumber(value: number): string {
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return String(Number(value.toFixed(digits)));
}

/** About `countTarget` round ticks from 0 to at least `max` (1, 2, 2.5, 5 × 10^n steps). */
export function niceTicks(max: number, countTarget = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / countTarget;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  // 10 × magnitude > rough always, so find() cannot miss.
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= rough)!;
  const count = Math.ceil(max / step - 1e-9);
  return Array.from({ length: count + 1 }, (_, i) => Number((i * step).toPrecision(12)));
}

function px(value: number): string {
  return Number(value.toFixed(1)).toString();
}

function text(
  x: number,
  y: number,
  content: string,
  attributes: Record<string, string | number> = {},
): string {
  const extra = Object.entries(attributes)
    .map(([name, value]) => ` ${name}="${escapeXml(String(value))}"`)
    .join('');
  return `<text x="${px(x)}" y="${px(y)}"${extra}>${escapeXml(content)}</text>`;
}

function assertFinite(value: number, what: string): void {
  if (!Number.isFinite(value)) throw new BenchError('BAD_OPTION', `chart: ${what} is not finite`);
}

function legendWidth(names: readonly string[]): number {
  const longest = Math.max(0, ...names.map((n) => n.length));
  return Math.min(260, 40 + longest * 7);
}

function makeFrame(width: number, height: number, names: readonly string[]): Frame {
  return { width, height, left: 78, right: 24 + legendWidth(names), top: 48, bottom: 58 };
}

function plotWidth(frame: Frame): number {
  return frame.width - frame.left - frame.right;
}

function plotHeight(frame: Frame): number {
  return frame.height - frame.top - frame.bottom;
}

function openSvg(frame: Frame, title: string): string[] {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${frame.width}" height="${frame.height}" viewBox="0 0 ${frame.width} ${frame.height}" font-family="${escapeXml(fontFamily)}" font-size="12">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect x="0" y="0" width="${frame.width}" height="${frame.height}" fill="#ffffff"/>`,
    text(frame.width / 2, 26, title, {
      'text-anchor': 'middle',
      'font-size': 16,
      'font-weight': 'bold',
    }),
  ];
}

/** Horizontal grid lines, y tick labels and the y axis title. */
function yAxis(frame: Frame, ticks: readonly number[], label: string): string[] {
  const yMax = ticks.at(-1) ?? 1;
  const out: string[] = [];
  const x0 = frame.left;
  const x1 = frame.width - frame.right;
  for (const tick of ticks) {
    const y = frame.top + plotHeight(frame) * (1 - tick / yMax);
    out.push(`<line x1="${px(x0)}" y1="${px(y)}" x2="${px(x1)}" y2="${px(y)}" stroke="#e3e3e3"/>`);
    out.push(text(x0 - 8, y + 4, formatCompact(tick), { 'text-anchor': 'end', fill: '#444' }));
  }
  const midY = frame.top + plotHeight(frame) / 2;
  out.push(
    text(18, midY, label, { 'text-anchor': 'middle', transform: `rotate(-90 18 ${px(midY)})` }),
  );
  return out;
}

/** The two axis lines and the x axis title. */
function axisLines(frame: Frame, xLabel: string): string[] {
  const bottomY = frame.height - frame.bottom;
  const x1 = frame.width - frame.right;
  return [
    `<line x1="${frame.left}" y1="${frame.top}" x2="${frame.left}" y2="${bottomY}" stroke="#333"/>`,
    `<line x1="${frame.left}" y1="${bottomY}" x2="${px(x1)}" y2="${bottomY}" stroke="#333"/>`,
    text(frame.left + plotWidth(frame) / 2, frame.height - 14, xLabel, { 'text-anchor': 'middle' }),
  ];
}

function legend(frame: Frame, names: readonly string[], shape: 'line' | 'box'): string[] {
  const x = frame.width - frame.right + 16;
  return names.flatMap((name, i) => {
    const y = frame.top + 8 + i * 20;
    const color = palette[i % palette.length]!;
    const mark =
      shape === 'line'
        ? `<line x1="${px(x)}" y1="${y}" x2="${px(x + 18)}" y2="${y}" stroke="${color}" stroke-width="2.5"/>`
        : `<rect x="${px(x + 3)}" y="${y - 6}" width="12" height="12" fill="${color}"/>`;
    return [mark, text(x + 24, y + 4, name)];
  });
}

interface XScale {
  position(x: number): number;
  ticks: number[];
}

function makeXScale(frame: Frame, xs: readonly number[], kind: 'linear' | 'log'): XScale {
  const distinct = [...new Set(xs)].sort((a, b) => a - b);
  const width = plotWidth(frame);
  if (kind === 'log') {
    if (distinct.some((x) => x <= 0))
      throw new BenchError('BAD_OPTION', 'chart: log x needs x > 0');
    const lo = Math.log10(distinct[0]!);
    const hi = Math.log10(distinct.at(-1)!);
    const pad = Math.max(0.05, (hi - lo) * 0.06);
    const position = (x: number): number =>
      frame.left + (width * (Math.log10(x) - (lo - pad))) / (hi - lo + 2 * pad);
    const powers: number[] = [];
    for (let p = Math.floor(lo); p <= Math.ceil(hi) && powers.length < 20; p++)
      powers.push(10 ** p);
    return { position, ticks: distinct.length <= 10 ? distinct : powers };
  }
  const ticks = niceTicks(distinct.at(-1)!);
  const xMax = ticks.at(-1)!;
  return { position: (x) => frame.left + (width * x) / xMax, ticks };
}

function checkLineSpec(spec: LineChartSpec): void {
  if (spec.series.length === 0 || spec.series.length > seriesMax) {
    throw new BenchError('BAD_OPTION', `chart: 1..${seriesMax} series`);
  }
  for (const series of spec.series) {
    if (series.points.length === 0 || series.points.length > pointsMax) {
      throw new BenchError(
        'BAD_OPTION',
        `chart: series ${series.name} needs 1..${pointsMax} points`,
      );
    }
    for (const point of series.points) {
      assertFinite(point.x, `x of ${series.name}`);
      assertFinite(point.y, `y of ${series.name}`);
    }
  }
}

export function renderLineChart(spec: LineChartSpec): string {
  checkLineSpec(spec);
  const names = spec.series.map((s) => s.name);
  const frame = makeFrame(spec.width ?? 760, spec.height ?? 420, names);
  const allPoints = spec.series.flatMap((s) => s.points);
  const yTicks = niceTicks(Math.max(...allPoints.map((p) => p.y)));
  const yMax = yTicks.at(-1)!;
  const xScale = makeXScale(
    frame,
    allPoints.map((p) => p.x),
    spec.xScale ?? 'linear',
  );
  const toY = (y: number): number => frame.top + plotHeight(frame) * (1 - y / yMax);
  const bottomY = frame.height - frame.bottom;
  const out = [...openSvg(frame, spec.title), ...yAxis(frame, yTicks, spec.yLabel)];
  for (const tick of xScale.ticks) {
    const x = xScale.position(tick);
    out.push(
      `<line x1="${px(x)}" y1="${bottomY}" x2="${px(x)}" y2="${bottomY + 5}" stroke="#333"/>`,
    );
    out.push(text(x, bottomY + 19, formatCompact(tick), { 'text-anchor': 'middle', fill: '#444' }));
  }
  out.push(...axisLines(frame, spec.xLabel));
  spec.series.forEach((series, i) => {
    const color = palette[i]!;
    const sorted = [...series.points].sort((a, b) => a.x - b.x);
    const coords = sorted.map((p) => `${px(xScale.position(p.x))},${px(toY(p.y))}`).join(' ');
    out.push(`<polyline points="${coords}" fill="none" stroke="${color}" stroke-width="2.5"/>`);
    for (const p of sorted) {
      const tip = `${series.name}: ${formatCompact(p.x)} → ${formatCompact(p.y)}`;
      out.push(
        `<circle cx="${px(xScale.position(p.x))}" cy="${px(toY(p.y))}" r="4" fill="${color}"><title>${escapeXml(tip)}</title></circle>`,
      );
    }
  });
  out.push(...legend(frame, names, 'line'), '</svg>', '');
  return out.join('\n');
}

function checkBarSpec(spec: BarChartSpec): void {
  if (spec.categories.length === 0 || spec.categories.length > categoriesMax) {
    throw new BenchError('BAD_OPTION', `chart: 1..${categoriesMax} categories`);
  }
  if (spec.series.length === 0 || spec.series.length > seriesMax) {
    throw new BenchError('BAD_OPTION', `chart: 1..${seriesMax} series`);
  }
  for (const series of spec.series) {
    if (series.values.length !== spec.categories.length) {
      throw new BenchError(
        'BAD_OPTION',
        `chart: series ${series.name} needs one value per category`,
      );
    }
    for (const value of series.values) assertFinite(value, `value of ${series.name}`);
  }
}

export function renderBarChart(spec: BarChartSpec): string {
  checkBarSpec(spec);
  const names = spec.series.map((s) => s.name);
  const frame = makeFrame(spec.width ?? 760, spec.height ?? 420, names);
  // Headroom so the value labels above the tallest bar stay inside the plot.
  const yTicks = niceTicks(1.08 * Math.max(...spec.series.flatMap((s) => s.values)));
  const yMax = yTicks.at(-1)!;
  const groupWidth = plotWidth(frame) / spec.categories.length;
  const barWidth = (groupWidth * 0.7) / spec.series.length;
  const bottomY = frame.height - frame.bottom;
  const out = [...openSvg(frame, spec.title), ...yAxis(frame, yTicks, spec.yLabel)];
  spec.categories.forEach((category, c) => {
    const groupX = frame.left + c * groupWidth;
    out.push(text(groupX + groupWidth / 2, bottomY + 19, category, { 'text-anchor': 'middle' }));
    spec.series.forEach((series, s) => {
      const value = series.values[c]!;
      const barHeight = (plotHeight(frame) * Math.max(0, value)) / yMax;
      const x = groupX + groupWidth * 0.15 + s * barWidth;
      const tip = `${series.name}, ${category}: ${formatCompact(value)}`;
      out.push(
        `<rect x="${px(x)}" y="${px(bottomY - barHeight)}" width="${px(barWidth - 2)}" height="${px(barHeight)}" fill="${palette[s]!}"><title>${escapeXml(tip)}</title></rect>`,
      );
      out.push(
        text(x + (barWidth - 2) / 2, bottomY - barHeight - 5, formatCompact(value), {
          'text-anchor': 'middle',
          'font-size': 11,
          fill: '#333',
        }),
      );
    });
  });
  out.push(...axisLines(frame, spec.xLabel ?? ''), ...legend(frame, names, 'box'), '</svg>', '');
  return out.join('\n');
}
