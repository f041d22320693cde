/**
 * Pushes a batch of entries to a peer so that one entry the peer refuses
 * (a value larger than it accepts, a version too far ahead of its clock)
 * does not hold back the rest. A batch the peer refuses as a whole with 400
 * or 413 is split in halves until the refused entries stand alone; those are
 * reported and skipped, the others delivered. Any other failure (timeout,
 * 5xx) is thrown unchanged: the caller retries the whole batch later.
 *
 * Splitting costs at most 2 * refused * log2(entries) extra calls, and only
 * after a refusal. The receiver re-serialises every value it stores, so the
 * re-serialised halves carry exactly the content of the original batch.
 */
import { PeerCallError } from './peer-client.ts';

export interface RefusedEntry {
  readonly keyBytes: number;
  readonly version: string;
  readonly reason: string;
}

export interface PushOutcome {
  readonly delivered: number;
  readonly refused: readonly RefusedEntry[];
}

/** Sends a comma-joined list of wire entries (one POST /replicate). */
export type PushEntries = (entriesJson: string, count: number) => Promise<void>;

const REASON_CHARS_MAX = 300;

export function isRefusal(error: unknown): error is PeerCallError {
  return error instanceof PeerCallError && (error.status === 400 || error.status === 413);
}

/** Pushes `entriesJson` (`count` entries); splits around entries the peer refuses. */
export async function pushRefusing(
  entriesJson: string,
  count: number,
  push: PushEntries,
): Promise<PushOutcome> {
  try {
    await push(entriesJson, count);
    return { delivered: count, refused: [] };
  } catch (error) {
    if (!isRefusal(error)) throw error;
    const entries = (JSON.parse(`[${entriesJson}]`) as Record<string, unknown>[]).map((entry) =>
      JSON.stringify(entry),
    );
    const refused: RefusedEntry[] = [];
    const delivered = await pushParts(entries, push, refused, error);
    return { delivered, refused };
  }
}

async function pushParts(
  parts: readonly string[],
  push: PushEntries,
  refused: RefusedEntry[],
  refusal: PeerCallError,
): Promise<number> {
  if (parts.length === 1) {
    refused.push(describeRefused(parts[0]!, refusal));
    return 0;
  }
  let delivered = 0;
  const middle = Math.ceil(parts.length / 2);
  for (const half of [parts.slice(0, middle), parts.slice(middle)]) {
    try {
      await push(half.join(','), half.length);
      delivered += half.length;
    } catch (error) {
      if (!isRefusal(error)) throw error;
      delivered += await pushParts(half, push, refused, error);
    }
  }
  return delivered;
}

function describeRefused(entryJson: string, refusal: PeerCallError): RefusedEntry {
  const entry = JSON.parse(entryJson) as { key: string; version: string };
  return {
    keyBytes: Buffer.byteLength(entry.key),
    version: entry.version,
    reason: refusal.message.slice(0, REASON_CHARS_MAX),
  };
}
