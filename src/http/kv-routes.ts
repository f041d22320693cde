/**
 * Client routes: the seed's API (`/ping`, `/store`, `/store/key`,
 * `/store/hash`) byte for byte, and the REST face (`/kv/:key`, `/kv`).
 */
import type { IncomingMessage } from 'node:http';
import { keyNotFound, PeerkvError } from '../errors.ts';
import { limits } from '../limits.ts';
import { scopedList } from '../security/access.ts';
import type { Entry, Mutation, MutationResult } from '../store/types.ts';
import { formatVersion } from '../version.ts';
import type { BodyBudget } from './body-budget.ts';
import { conditionFromHeaders, versionMismatch } from './conditions.ts';
import { entryJson, streamList } from './list-stream.ts';
import { type BodyLimits, readJson } from './read-body.ts';
import { sendJson, sendJsonText } from './respond.ts';
import type { Route } from './route.ts';
import {
  keyFromPath,
  requireObject,
  validateKey,
  validateListQuery,
  validateTtl,
  valueToJson,
} from './validate.ts';

export type LocalWrite = Extract<Mutation, { kind: 'local' }>;

/** What the client routes need from the node. */
export interface KvService {
  readonly nodeId: string;
  /** This process's nonce (see PeerkvNode.instanceId). */
  readonly instanceId: string;
  /** The key's entry if it reads as present (not deleted, not expired). */
  get(key: string): Entry | undefined;
  list(prefix: string, after: string, limit: number): Entry[];
  write(mutation: LocalWrite): Promise<MutationResult>;
  /** All of the writes or none, in one transaction (conditions checked first). */
  writeBatch(mutations: readonly LocalWrite[]): Promise<MutationResult[]>;
  /** Mutations the write queue can still take. */
  writeRoom(): number;
  storeHash(): string;
}

export interface KvRouteOptions {
  readonly valueBytesMax: number;
  readonly wallMs: () => number;
  /** The highest version timestamp this node's clock has issued or observed. */
  readonly clockHigh: () => number;
  /** The tombstone horizon and acknowledgements this node announces (src/tombstones/). */
  readonly ackHeaders?: () => {
    readonly horizon: string;
    readonly acked: string;
    /** X-Peerkv-Covered, sent when not empty (src/tombstones/removed-members.ts). */
    readonly covered?: string;
  };
  /** The node-wide budget of request-body bytes in flight. */
  readonly bodyBudget: BodyBudget;
}

// The route types live in ./route.ts; re-exported for routes written against this file.
export type { Handler, Permission, Route, RouteExtras } from './route.ts';

/** The expiry of a write with a TTL, as a spreadable field. */
export function expiryOf(
  ttlSeconds: number | undefined,
  nowWallMs: number,
): { expiresAt?: number } {
  if (ttlSeconds === undefined) return {};
  return { expiresAt: Math.floor(nowWallMs + ttlSeconds * 1000) };
}

function ackHeaders(options: KvRouteOptions): Record<string, string> {
  const report = options.ackHeaders?.();
  if (!report) return {};
  return {
    'X-Peerkv-Horizon': report.horizon,
    'X-Peerkv-Acked': report.acked,
    ...(report.covered ? { 'X-Peerkv-Covered': report.covered } : {}),
  };
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
  const writeAnswer = (key: string, result: MutationResult, expiry: { expiresAt?: number } = {}) =>
    JSON.stringify({ key, version: formatVersion(result.version), ...expiry });
  const write = async (mutation: LocalWrite): Promise<MutationResult> => {
    const result = await service.write(mutation);
    if (result.refused) throw versionMismatch(mutation.key, result);
    return result;
  };

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
          'X-Peerkv-Clock': String(options.clockHigh()),
          ...ackHeaders(options),
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
        const expiresAt = expiryOf(validateTtl(object.ttl), options.wallMs());
        const result = await write({ kind: 'local', key, valueJson, ...expiresAt });
        sendJsonText(res, 200, writeAnswer(key, result, expiresAt));
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
        // Read a few rows at a time as the client drains the answer, within the token's prefixes.
        const fetch = (after: string, limit: number) =>
          scopedList(req.access, { prefix: query.prefix, after, limit }, (prefix, from, rows) =>
            service.list(prefix, from, rows),
          );
        return streamList(res, fetch, query.after, query.limit);
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
        sendJsonText(res, 200, entryJson(entry), { ETag: `"${formatVersion(entry.version)}"` });
      },
    },
    {
      method: 'PUT',
      pattern: '/kv/*',
      permission: 'write',
      handler: async (req, res) => {
        const key = keyFromPath(req.path.slice('/kv/'.length));
        req.access.requireKey(key);
        const condition = conditionFromHeaders(req.headers, 'PUT');
        const ttlSeconds = validateTtl(req.query.ttl);
        const valueJson = valueToJson(await readWriteBody(req), options.valueBytesMax);
        const expiresAt = expiryOf(ttlSeconds, options.wallMs());
        const result = await write({
          kind: 'local',
          key,
          valueJson,
          ...expiresAt,
          ...(condition && { condition }),
        });
        sendJsonText(res, 200, writeAnswer(key, result, expiresAt), {
          ETag: `"${formatVersion(result.version)}"`,
        });
      },
    },
    {
      method: 'DELETE',
      pattern: '/kv/*',
      permission: 'write',
      handler: async (req, res) => {
        const key = keyFromPath(req.path.slice('/kv/'.length));
        req.access.requireKey(key);
        const condition = conditionFromHeaders(req.headers, 'DELETE');
        const result = await write({
          kind: 'local',
          key,
          valueJson: null,
          ...(condition && { condition }),
        });
        const version = formatVersion(result.version);
        sendJson(res, 200, { key, version, deleted: true, existed: result.existed });
      },
    },
  ];
}
