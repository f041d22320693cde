/**
 * `GET /watch?prefix=P`: a Server-Sent Events stream of the changes this
 * node applies to keys under the prefix (local writes and replicated ones).
 * `Last-Event-ID` (or `?since=SEQ`) replays every change after that sequence
 * number, then goes live; without either the stream starts at the present.
 * A sequence this node never reached (its data was wiped, or the id is from
 * another node) is answered with an error event, not silence.
 */
import { PeerkvError } from '../errors.ts';
import { limits } from '../limits.ts';
import { listingPrefixes } from '../security/access.ts';
import { errorEvent } from '../watch/watch-events.ts';
import type { WatchHub } from '../watch/watch-hub.ts';
import type { Route } from './kv-routes.ts';

export interface WatchService {
  readonly nodeId: string;
  readonly seq: number;
  readonly hub: WatchHub;
}

/** How long a cut-off stream may take to flush its error event before its socket is destroyed. */
const CUT_OFF_LINGER_MS = limits.watchDrainTimeoutMs;
const SEQ_PATTERN = /^\d{1,15}$/;

export function watchRoutes(service: WatchService): Route[] {
  return [
    {
      method: 'GET',
      pattern: '/watch',
      permission: 'read',
      handler: (req, res) => {
        const prefix = optionalText(req.query.prefix, 'prefix');
        if (Buffer.byteLength(prefix) > limits.keyBytesMax) {
          throw new PeerkvError('KEY_TOO_LARGE', `prefix is at most ${limits.keyBytesMax} bytes`);
        }
        // A token limited to prefixes sees only its keys; a prefix wholly outside them is refused.
        if (listingPrefixes(req.access, prefix).length === 0) {
          throw new PeerkvError('FORBIDDEN', 'prefix is outside the prefixes of this token');
        }
        const access = req.access;
        const since = resumePoint(req.headers['last-event-id'], req.query.since);
        service.hub.assertRoom();
        res.writeHead(200, {
          'Content-Type': 'text/event-stream; charset=utf-8',
          'Cache-Control': 'no-cache',
          Connection: 'keep-alive',
          'X-Accel-Buffering': 'no',
          'X-Peerkv-Node-Id': service.nodeId,
        });
        res.flushHeaders();
        if (since !== undefined && since > service.seq) {
          const message = `this node has no history after ${since} (its sequence is at ${service.seq}: a wiped node, or an id from another node); start again without an id`;
          res.end(errorEvent('HISTORY_UNAVAILABLE', message));
          return;
        }
        if (req.method === 'HEAD') {
          res.end();
          return;
        }
        const watcher = service.hub.open(
          res,
          {
            matches: (key) => key.startsWith(prefix) && access.allows(key),
            afterSeq: since ?? service.seq,
            pageRows: limits.watchPageRows,
            lagChangesMax: limits.watchLagChangesMax,
            drainTimeoutMs: limits.watchDrainTimeoutMs,
          },
          (cut) => {
            if (cut) setTimeout(() => res.destroy(), CUT_OFF_LINGER_MS).unref();
          },
        );
        res.on('close', () => watcher.close());
        res.write(': watching\n\n');
      },
    },
  ];
}

/** Last-Event-ID wins over ?since; both are a non-negative sequence number. */
function resumePoint(header: string | string[] | undefined, query: unknown): number | undefined {
  const text = header !== undefined ? header : query;
  if (text === undefined) return undefined;
  const what = header !== undefined ? 'Last-Event-ID' : 'since';
  if (typeof text !== 'string' || !SEQ_PATTERN.test(text.trim())) {
    throw new PeerkvError('BAD_REQUEST', `${what} must be a change sequence number`);
  }
  return Number(text.trim());
}

function optionalText(value: unknown, name: string): string {
  if (value === undefined) return '';
  if (typeof value !== 'string') throw new PeerkvError('BAD_REQUEST', `${name} must be given once`);
  if (!value.isWellFormed()) throw new PeerkvError('BAD_REQUEST', `${name} is not valid Unicode`);
  return value;
}
