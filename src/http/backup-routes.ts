/**
 * `GET /backup` (permission `admin`): a consistent copy of this node's SQLite
 * database, taken online while the node keeps serving writes, streamed as
 * `application/vnd.sqlite3` with its length known. One backup at a time: a
 * second one gets 503 BACKUP_RUNNING with Retry-After. The copy is streamed
 * from an open file in bounded chunks with backpressure; a client that goes
 * away, or stops reading for the request timeout, ends it and frees its disk
 * space. `HEAD /backup` answers the headers it can without taking a copy.
 */
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { Request, Route } from './route.ts';

export const BACKUP_CONTENT_TYPE = 'application/vnd.sqlite3';

/** A finished copy (src/store/snapshots.ts makes them). */
export interface BackupCopy {
  readonly file: {
    createReadStream(options: { highWaterMark: number; autoClose: boolean }): Readable;
  };
  readonly bytes: number;
  readonly nodeId: string;
  readonly seq: number;
  readonly takenWallMs: number;
  release(): Promise<void>;
}

export interface BackupService {
  /** A copy of the database; `signal` fires when the client goes away. */
  take(signal: AbortSignal): Promise<BackupCopy>;
}

export interface BackupRouteOptions {
  readonly chunkBytes: number;
  /** A client that reads nothing for this long is cut off. */
  readonly idleMs: number;
  readonly log: Logger;
}

export function backupRoutes(service: BackupService, options: BackupRouteOptions): Route[] {
  return [
    {
      method: 'GET',
      pattern: '/backup',
      permission: 'admin',
      handler: (req, res) => sendBackup(service, options, req, res),
    },
  ];
}

async function sendBackup(
  service: BackupService,
  options: BackupRouteOptions,
  req: Request,
  res: ServerResponse,
): Promise<void> {
  if (req.method === 'HEAD') {
    res.writeHead(200, { 'Content-Type': BACKUP_CONTENT_TYPE, 'Cache-Control': 'no-store' });
    res.end();
    return;
  }
  const gone = new AbortController();
  res.once('close', () => gone.abort());
  let copy: BackupCopy;
  try {
    copy = await service.take(gone.signal);
  } catch (error) {
    if (!gone.signal.aborted) throw error;
    options.log.info('backup abandoned while copying: the client went away');
    return;
  }
  try {
    if (gone.signal.aborted) {
      options.log.info('backup abandoned before sending: the client went away');
      return;
    }
    res.writeHead(200, backupHeaders(copy));
    // The socket, not the response: destroying a response whose socket is backed up leaves it open.
    res.setTimeout(options.idleMs, () => res.socket?.destroy());
    const stream = copy.file.createReadStream({
      highWaterMark: options.chunkBytes,
      autoClose: false,
    });
    await pipeline(stream, res);
    options.log.info({ bytes: copy.bytes, seq: copy.seq }, 'backup sent');
  } catch (error) {
    if (!gone.signal.aborted) throw error;
    options.log.info({ bytes: copy.bytes }, 'backup cut short: the client went away');
  } finally {
    await copy.release();
  }
}

function backupHeaders(copy: BackupCopy): Record<string, string> {
  const stamp = new Date(copy.takenWallMs).toISOString().replace(/[-:]|\.\d+/g, '');
  return {
    'Content-Type': BACKUP_CONTENT_TYPE,
    'Content-Length': String(copy.bytes),
    'Content-Disposition': `attachment; filename="peerkv-${copy.nodeId}-${stamp}.db"`,
    'Cache-Control': 'no-store',
    'X-Peerkv-Node-Id': copy.nodeId,
    'X-Peerkv-Backup-Seq': String(copy.seq),
  };
}
