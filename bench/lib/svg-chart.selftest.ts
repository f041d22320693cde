/**
 * Self-test for svg-chart.ts: renders sample line (log and linear x) and bar
 * charts to a temp dir, checks each is well-formed XML with the expected
 * parts, and checks that the XML check itself rejects broken input.
 *
 *   npx tsx bench/lib/svg-chart.selftest.ts
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  formatCompact,
  type LineChartSpec,
  niceTicks,
  renderBarChart,
  renderLineChart,
} from './svg-chart.ts';
import { findXmlProblem } from './xml-check.ts';

const trickyName = `peerkv <GET> "k" & 'v'`;

function checkSvg(svg: string, mustContain: readonly string[]): void {
  assert.equal(findXmlProblem(svg), null, 'chart is well-formed XML');
  assert.match(svg, /<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.doesNotMatch(svg, /NaN|undefined|Infinity/, 'no broken numbers');
  for (const part of mustContain) assert.ok(svg.includes(part), `chart contains ${part}`);
}

function checkXmlCheck(): void {
  const bad = [
    '<svg><g></svg>',
    '<svg a="1" a="2"/>',
    '<svg>a & b</svg>',
    '<svg x=1/>',
    '<svg/><svg/>',
    '<svg>',
    'text<svg/>',
  ];
  for (const xml of bad) assert.notEqual(findXmlProblem(xml), null, `rejects ${xml}`);
  assert.equal(
    findXmlProblem('<?xml version="1.0"?>\n<a b="&amp;"><!-- c --><d/>e&lt;</a>\n'),
    null,
  );
}

function checkHelpers(): void {
  assert.deepEqual(niceTicks(47), [0, 10, 20, 30, 40, 50]);
  assert.deepEqual(niceTicks(0), [0, 1]);
  assert.equal(niceTicks(123_456).at(-1)! >= 123_456, true);
  assert.equal(formatCompact(950), '950');
  assert.equal(formatCompact(12_345), '12.3k');
  assert.equal(formatCompact(1_000_000), '1M');
  assert.equal(formatCompact(0.5), '0.5');
}

const connectionsChart: LineChartSpec = {
  title: 'Throughput vs connections',
  xLabel: 'connections (log scale)',
  yLabel: 'requests/s',
  xScale: 'log',
  series: [
    {
      name: 'bare polka GET /ping',
      points: [1, 10, 50, 200].map((x, i) => ({ x, y: 9_000 + i * 6_000 })),
    },
    { name: trickyName, points: [1, 10, 50, 200].map((x, i) => ({ x, y: 4_000 + i * 2_500 })) },
  ],
};

const keysChart: LineChartSpec = {
  title: 'Read throughput vs data set size',
  xLabel: 'keys (log scale)',
  yLabel: 'requests/s',
  xScale: 'log',
  series: [
    {
      name: 'GET random key',
      points: [1e4, 1e5, 1e6].map((x, i) => ({ x, y: 20_000 - i * 3_000 })),
    },
  ],
};

async function main(): Promise<void> {
  checkXmlCheck();
  checkHelpers();
  const dir = await mkdtemp(join(tmpdir(), 'peerkv-svg-selftest-'));
  const charts: [string, string, string[]][] = [
    ['connections.svg', renderLineChart(connectionsChart), ['>200<', '>50<', 'peerkv &lt;GET&gt;']],
    ['keys.svg', renderLineChart(keysChart), ['>10k<', '>100k<', '>1M<']],
    [
      'linear.svg',
      renderLineChart({ ...keysChart, xScale: 'linear', title: 'Linear x' }),
      ['>Linear x<'],
    ],
    [
      'bars.svg',
      renderBarChart({
        title: 'Ceiling vs peerkv at 50 connections',
        yLabel: 'requests/s',
        categories: ['GET', 'POST'],
        series: [
          { name: 'bare polka', values: [40_000, 31_000] },
          { name: trickyName, values: [18_000, 7_500] },
        ],
      }),
      ['>GET<', '>POST<', '>40k<'],
    ],
  ];
  for (const [file, svg, mustContain] of charts) {
    checkSvg(svg, mustContain);
    await writeFile(join(dir, file), svg);
  }
  assert.throws(() =>
    renderLineChart({ ...keysChart, series: [{ name: 'z', points: [{ x: 0, y: 1 }] }] }),
  );
  assert.throws(() =>
    renderLineChart({ ...keysChart, series: [{ name: 'n', points: [{ x: 1, y: Number.NaN }] }] }),
  );
  console.log(`svg-chart selftest ok: ${charts.length} charts in ${dir}`);
}

await main();
