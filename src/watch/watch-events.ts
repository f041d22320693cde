/**
 * Server-Sent Events for the watch: one event per change read from the
 * node's change sequence. Pure: turns a change into its event text.
 *
 *   id: <seq>            the node's change sequence number
 *   event: put|delete
 *   data: {"key","value","version"[,"expiresAt"]}   or {"key","version","deleted":true}
 *                        or {"key","version","expired":true} (the key expired)
 */
import { isLive } from '../store/expiry.ts';
import type { Change } from '../store/types.ts';
import { formatVersion } from '../version.ts';

export function changeEvent(change: Change, nowWallMs: number): string {
  const key = JSON.stringify(change.key);
  const version = formatVersion(change.version);
  let kind: 'put' | 'delete';
  let data: string;
  if (isLive(change, nowWallMs)) {
    kind = 'put';
    const expires = change.expiresAt ? `,"expiresAt":${change.expiresAt}` : '';
    data = `{"key":${key},"value":${change.valueJson},"version":"${version}"${expires}}`;
  } else {
    kind = 'delete';
    const why = change.expiresAt ? '"expired":true' : '"deleted":true';
    data = `{"key":${key},"version":"${version}",${why}}`;
  }
  return `id: ${change.seq}\nevent: ${kind}\ndata: ${data}\n\n`;
}

/** An error event; the stream ends after it. */
export function errorEvent(code: string, message: string): string {
  return `event: error\ndata: ${JSON.stringify({ error: message, code })}\n\n`;
}

export const HEARTBEAT = ': heartbeat\n\n';
