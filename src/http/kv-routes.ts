/**
 * Client routes: the seed's API (`/ping`, `/store`, `/store/key`,
 * `/store/hash`) byte for byte, and the REST face (`/kv/:key`, `/kv`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { keyNotFound, PeerkvError } from '../errors.ts';
import { limits } from '../limits.ts';
import type { Entry, MutationResult } from '../store/types.ts';
import { formatVersion } from '../version.ts';
import type { BodyBudget } from './body-budget.ts';
import { type BodyLimits, readJson } from './read-body.ts';
import { sendJson, sendJsonText } from './respond.ts';
import {
  keyFromPath,
  requireObject,
  validateKey,
  validateListQuery,
  valueToJson,
} from './validate.ts';

/** What the client routes need from the node. */
export interface KvService {
  readonly nodeId: string;
  get(key: string): Entry | undefined;
  list(prefix: string, after: string, limit: number): Entry[];
  write(key: string, valueJson: string | null): Promise<MutationResult>;
  /** Mutations the write queue can still take. */
  writeRoom(): number;
  storeHash(): string;
}

export interface KvRouteOptions {
  readonly valueBytesMax: number;
  readonly wallMs: () => number;
  /** The node-wide budget of request-body bytes in flight. */
  readonly bodyBudget: BodyBudget;
}

export type Handler = (
  req: IncomingMessage & RouteExtras,
  res: ServerResponse,
) => Promise<void> | void;
export interface RouteExtras {
  path: string;
  query: Record<string, unknown>;
}
export interface Route {
  readonly method: string;
  readonly pattern: string;
  readonly handler: Handler;
}

export function kvRoutes(service: KvService, options: KvRouteOptions): Route[] {
  const body: BodyLimits = {
    bytesMax: options.valueBytesMax + limits.bodyOverheadBytes,
    budget: options.bodyBudget,
  };
  /** Reads a write's body only when the write queue has room for it. */
  const readWriteBody = (req: IncomingMessage): Promise<unknown> => {
    if (service.writeRoom() < 1) {
      throw new PeerkvError('OVERLOADED', 'write queue is full, retry later', {
        headers: { 'Retry-After': '1', Connection: 'close' },
      });
    }
    return readJson(req, body);
  };
  const liveEntry = (key: string): Entry => {
    const entry = service.get(key);
    if (!entry || entry.valueJson === null) throw keyNotFound();
    return entry;
  };
  const writeAnswer = (key: string, result: MutationResult) =>
    JSON.stringify({ key, version: formatVersion(result.version) });

  return [
    {
      method: 'GET',
      pattern: '/ping',
      handler: (_req, res) => {
        sendJsonText(res, 200, '{"message":"pong"}', {
          'X-Peerkv-Node-Id': service.nodeId,
          'X-Peerkv-Time-Ms': String(Math.floor(options.wallMs())),
        });
      },
    },
    {
      method: 'POST',
      pattern: '/store',
      handler: async (req, res) => {
        const object = requireObject(await readWriteBody(req), 'request body');
        const key = validateKey(object.key);
        const valueJson = valueToJson(object.value, options.valueBytesMax);
        sendJsonText(res, 200, writeAnswer(key, await service.write(key, valueJson)));
      },
    },
    {
      method: 'GET',
      pattern: '/store/key',
      handler: async (req, res) => {
        const fromQuery = req.query.key;
        const key =
          fromQuery !== undefined
            ? validateKey(fromQuery)
            : validateKey(requireObject(await readJson(req, body), 'request body').key);
        sendJsonText(res, 200, `{"value":${liveEntry(key).valueJson}}`);
      },
    },
    {
      method: 'GET',
      pattern: '/store/hash',
      handler: (_req, res) => sendJson(res, 200, { hash: service.storeHash() }),
    },
    {
      method: 'GET',
      pattern: '/kv',
      handler: (req, res) => {
        const query = validateListQuery(req.query);
        const entries = service.list(query.prefix, query.after, query.limit);
        sendJsonText(res, 200, listAnswer(entries, query.limit));
      },
    },
    {
      method: 'GET',
      pattern: '/kv/*',
      handler: (req, res) => {
        const entry = liveEntry(keyFromPath(req.path.slice('/kv/'.length)));
        sendJsonText(res, 200, entryJson(entry));
      },
    },
    {
      method: 'PUT',
      pattern: '/kv/*',
      handler: async (req, res) => {
        const key = keyFromPath(req.path.slice('/kv/'.length));
        const valueJson = valueToJson(await readWriteBody(req), options.valueBytesMax);
        sendJsonText(res, 200, writeAnswer(key, await service.write(key, valueJson)));
      },
    },
    {
      method: 'DELETE',
      pattern: '/kv/*',
      handler: async (req, res) => {
        const key = keyFromPath(req.path.slice('/kv/'.length));
        const result = await service.write(key, null);
        const version = formatVersion(result.version);
        sendJson(res, 200, { key, version, deleted: true, existed: result.existed });
      },
    },
  ];
}

function entryJson(entry: Entry): string {
  const key = JSON.stringify(entry.key);
  return `{"key":${key},"value":${entry.valueJson},"version":"${formatVersion(entry.version)}"}`;
}

/** A page of entries, cut short if it would pass the response byte bound. */
function listAnswer(entries: Entry[], limit: number): string {
  const items: string[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const json = entryJson(entry);
    bytes += json.length;
    if (items.length > 0 && bytes > limits.listBytesMax) break;
    items.push(json);
  }
  const last = items.length > 0 ? entries[items.length - 1] : undefined;
  const more = items.length < entries.length || entries.length === limit;
  const next = more && last ? JSON.stringify(last.key) : 'null';
  return `{"items":[${items.join(',')}],"next":${next}}`;
}
