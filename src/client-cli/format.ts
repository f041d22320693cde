/** Human-readable output of the client commands: values, tables, ages. */
import type { ClusterOverview, JsonValue, OverviewNode } from '../client/types.ts';

/** A string as is; anything else as JSON (indented when it is an object or array). */
export function formatValue(value: JsonValue): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null) return JSON.stringify(value, null, 2);
  return JSON.stringify(value);
}

/** Columns padded to their widest cell. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

export function formatAgo(iso: string | undefined, nowMs: number): string {
  if (iso === undefined) return '-';
  const seconds = Math.max(0, Math.round((nowMs - Date.parse(iso)) / 1000));
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7_200) return `${Math.round(seconds / 60)}m ago`;
  return `${Math.round(seconds / 3_600)}h ago`;
}

export function formatStatus(overview: ClusterOverview, nowMs: number): string {
  const rows = overview.nodes.map((node) => statusRow(node, nowMs));
  const header = ['NODE', 'ID', 'STATE', 'KEYS', 'HASH', 'PENDING', 'LAG P99', 'LAST RESYNC'];
  const down = overview.nodes.filter((node) => node.state !== 'up').length;
  const verdict = [
    `${overview.nodes.length} node(s)`,
    down === 0 ? 'all up' : `${down} not up`,
    overview.hashesAgree ? 'hashes agree' : 'HASHES DIFFER',
  ].join(', ');
  return `${table(header, rows)}${verdict}\n`;
}

function statusRow(node: OverviewNode, nowMs: number): string[] {
  const resync = node.lastResync;
  const resyncText = resync
    ? `${formatAgo(resync.at, nowMs)} ${resync.error ? 'failed' : (resync.result ?? '')}`.trim()
    : '-';
  return [
    `${node.url}${node.self ? ' *' : ''}`,
    node.nodeId ?? '-',
    node.resyncing ? `${node.state} (resyncing)` : node.state,
    node.entries === null ? '-' : node.entries.toLocaleString('en-US'),
    node.hash === null ? '-' : node.hash.slice(0, 12),
    node.pendingChanges === null ? '-' : String(node.pendingChanges),
    node.lagMsP99 === null ? '-' : `${Math.round(node.lagMsP99)} ms`,
    resyncText,
  ];
}
