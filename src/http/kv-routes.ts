/**
 * Client routes: the seed's API (`/ping`, `/store`, `/store/key`,
 * `/store/hash`) byte for byte, and the REST face (`/kv/:key`, `/kv`).
 */
import type { IncomingMessage } from 'node:http';
import { keyNotFound, PeerkvError } from '../errors.ts';
import { limits } from '../limits.ts';
import { scopedList } from '../security/access.ts';
import type { Entry, MutationResult } from '../store/types.ts';
import { formatVersion } from '../version.ts';
import type { BodyBudget } from './body-budget.ts';
import { type BodyLimits, readJson } from './read-body.ts';
import { sendJson, sendJsonText } from './respond.ts';
import type { Route } from './route.ts';
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
  /** This process's nonce (see PeerkvNode.instanceId). */
  readonly instanceId: string;
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

// The route types live in ./route.ts; re-exported for routes written against this file.
export type { Handler, Permission, Route, RouteExtras } from './route.ts';

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
      permission: 'open',
      handler: (_req, res) => {
        sendJsonText(res, 200, '{"message":"pong"}', {
          'X-Peerkv-Node-Id': service.nodeId,
          'X-Peerkv-Time-Ms': String(Math.floor(options.wallMs())),
          'X-Peerkv-Max-Value-Bytes': String(options.valueBytesMax),
          'X-Peerkv-Instance': service.instanceId,
        });
      },
    },
    {
      method: 'POST',
      pattern: '/store',
      permission: 'write',
      handler: async (req, res) => {
        const object = requireObject(await readWriteBody(req), 'request body');
        const key = validateKey(object.key);
        req.access.requireKey(key);
        const valueJson = valueToJson(object.value, options.valueBytesMax);
        sendJsonText(res, 200, writeAnswer(key, await service.write(key, valueJson)));
      },
    },
    {
      method: 'GET',
      pattern: '/store/key',
      permission: 'read',
      handler: async (req, res) => {
        const fromQuery = req.query.key;
        const key =
          fromQuery !== undefined
            ? validateKey(fromQuery)
            : validateKey(requireObject(await readJson(req, body), 'request body').key);
        req.access.requireKey(key);
        sendJsonText(res, 200, `{"value":${liveEntry(key).valueJson}}`);
      },
    },
    {
      method: 'GET',
      pattern: '/store/hash',
      permission: 'read',
      handler: (_req, res) => sendJson(res, 200, { hash: service.storeHash() }),
    },
    {
      method: 'GET',
      pattern: '/kv',
      permission: 'read',
      handler: (req, res) => {
        const query = validateListQuery(req.query);
        const entries = scopedList(req.access, query, (prefix, after, limit) =>
          service.list(prefix, after, limit),
        );
        sendJsonText(res, 200, listAnswer(entries, query.limit));
      },
    },
    {
      method: 'GET',
      pattern: '/kv/*',
      permission: 'read',
      handler: (req, res) => {
        const key = keyFromPath(req.path.slice('/kv/'.length));
        req.access.requireKey(key);
        const entry = liveEntry(key);
        sendJsonText(res, 200, entryJson(entry));
      },
    },
    {
      method: 'PUT',
      pattern: '/kv/*',
      permission: 'write',
      handler: async (req, res) => {
        const key = keyFromPath(req.path.slice('/kv/'.length));
        req.access.requireKey(key);
        const valueJson = valueToJson(await readWriteBody(req), options.valueBytesMax);
        sendJsonText(res, 200, writeAnswer(key, await service.write(key, valueJson)));
      },
    },
    {
      method: 'DELETE',
      pattern: '/kv/*',
      permission: 'write',
      handler: async (req, res) => {
        const key = keyFromPath(req.path.slice('/kv/'.length));
        req.access.requireKey(key);
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
