/**
 * Writes a `GET /kv` page as it is read, in chunks, waiting for the client to
 * take each one (backpressure): rows are read from the store a few at a time
 * only as the client drains what was written, so a client that reads slowly,
 * or not at all, holds a few rows and the socket's buffers, not the whole
 * page (up to listBytesMax). The answer is the same JSON as a whole page
 * would be; a page larger than one chunk is sent chunked.
 */
import type { ServerResponse } from 'node:http';
import { limits } from '../limits.ts';
import type { Entry } from '../store/types.ts';
import { formatVersion } from '../version.ts';
import { sendJsonText } from './respond.ts';

const JSON_TYPE = 'application/json; charset=utf-8';

export function entryJson(entry: Entry): string {
  const key = JSON.stringify(entry.key);
  const version = formatVersion(entry.version);
  const expires = entry.expiresAt ? `,"expiresAt":${entry.expiresAt}` : '';
  return `{"key":${key},"value":${entry.valueJson},"version":"${version}"${expires}}`;
}

/** Reads up to `limit` live entries after `after` (in key order). */
export type ListFetch = (after: string, limit: number) => Entry[];

/**
 * Streams a page of at most `limit` entries after `after`, read from the store
 * a few rows at a time as the client takes them; resolves when it is written
 * or the client went away.
 */
export async function streamList(
  res: ServerResponse,
  fetch: ListFetch,
  after: string,
  limit: number,
): Promise<void> {
  let chunk = '{"items":[';
  let bytes = 0;
  let items = 0;
  let cut = false;
  let lastKey: string | undefined;
  let cursor = after;
  // Rows per read: few while entries are large (a stalled client holds one read), many while
  // they are small (each read is a query): about one chunk's worth, from what was seen so far.
  let rowsPerRead: number = limits.listFetchRowsMin;
  while (!cut && items < limit) {
    const asked = Math.min(rowsPerRead, limit - items);
    const batch = fetch(cursor, asked);
    for (const entry of batch) {
      const json = entryJson(entry);
      bytes += json.length;
      if (items > 0 && bytes > limits.listBytesMax) {
        cut = true;
        break;
      }
      chunk += items > 0 ? `,${json}` : json;
      items += 1;
      lastKey = entry.key;
      if (chunk.length >= limits.listChunkChars) {
        if (!res.headersSent) res.writeHead(200, { 'Content-Type': JSON_TYPE });
        if (!(await write(res, chunk))) return;
        chunk = '';
      }
    }
    if (cut || batch.length < asked) break;
    cursor = batch.at(-1)?.key ?? cursor;
    const charsPerRow = Math.max(1, bytes / items);
    rowsPerRead = Math.max(
      limits.listFetchRowsMin,
      Math.min(limits.listFetchRowsMax, Math.floor(limits.listChunkChars / charsPerRow)),
    );
  }
  const more = cut || items === limit;
  const next = more && lastKey !== undefined ? JSON.stringify(lastKey) : 'null';
  const tail = `${chunk}],"next":${next}}`;
  // A page that fits one chunk goes out whole, with a Content-Length, like every other answer.
  if (res.headersSent) res.end(tail);
  else sendJsonText(res, 200, tail);
}

/** Writes a chunk; waits for the client to drain it when the buffer is full. False: gone. */
async function write(res: ServerResponse, chunk: string): Promise<boolean> {
  if (res.destroyed) return false;
  if (res.write(chunk)) return true;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.once('drain', done).once('close', done);
  });
  return !res.destroyed;
}
