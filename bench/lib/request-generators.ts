/**
 * Request sequences for runLoad: writes of distinct keys (one key per request,
 * never repeated in a run) and reads of random keys from a preloaded set.
 * Randomness comes from a seeded generator so a run can be replayed.
 */
import assert from 'node:assert/strict';
import type { HttpMethod, LoadRequest } from './load.ts';

const jsonHeaders = { 'content-type': 'application/json' };

/** A fixed path, or one built from the key (e.g. `/kv/<key>`). */
export type KeyPath = string | ((key: string) => string);
/** A body built from the key, or null to send none. */
export type KeyBody = ((key: string) => string) | null;

function requestFor(req: LoadRequest, key: string, path: KeyPath, makeBody: KeyBody): LoadRequest {
  const keyPath = typeof path === 'string' ? path : path(key);
  return { ...req, path: keyPath, body: makeBody === null ? undefined : makeBody(key) };
}

/** mulberry32: a small, fast, seeded PRNG returning floats in [0, 1). */
export function createSeededRandom(seed: number): () => number {
  assert.ok(Number.isInteger(seed), 'seed is an integer');
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** The name of the i-th preloaded key: use it when loading data, and reads will find it. */
export function existingKeyName(index: number): string {
  return `k${index}`;
}

export interface DistinctKeyWritesOptions {
  path: KeyPath;
  method?: HttpMethod;
  /** Keys look like `<keyPrefix>-<connection>-<counter>`; default 'k'. */
  keyPrefix?: string;
  /** Size of the default value string; default 100. */
  valueBytes?: number;
  /** Body for a key; default `{"key":<key>,"value":"xxx…"}`. */
  makeBody?: KeyBody;
}

/**
 * For LoadOptions.requestsForConnection: every request writes a key no other
 * request of the run writes (`k-<connection>-<counter>`).
 */
export function distinctKeyWrites(
  options: DistinctKeyWritesOptions,
): (connectionIndex: number) => LoadRequest[] {
  const keyPrefix = options.keyPrefix ?? 'k';
  const value = 'x'.repeat(options.valueBytes ?? 100);
  const makeBody: KeyBody =
    options.makeBody === undefined ? (key) => JSON.stringify({ key, value }) : options.makeBody;
  return (connectionIndex) => {
    let counter = 0;
    const request: LoadRequest = {
      method: options.method ?? 'POST',
      headers: jsonHeaders,
      setupRequest: (req) => {
        const key = `${keyPrefix}-${connectionIndex}-${counter++}`;
        return requestFor(req, key, options.path, makeBody);
      },
    };
    return [request];
  };
}

export interface RandomExistingKeyReadsOptions {
  path: KeyPath;
  /** GET by default: autocannon sends a body with GET too. */
  method?: HttpMethod;
  /** Keys existingKeyName(0 .. keyCount-1) must exist on the server. */
  keyCount: number;
  random: () => number;
  /** Body for a key; default `{"key":<key>}`. */
  makeBody?: KeyBody;
}

/** How many random reads randomExistingKeyReads builds in advance (the sequence then repeats). */
const prebuiltReadsDefault = 1_000;

/**
 * For LoadOptions.requests: reads of preloaded keys picked at random. The
 * requests are built in advance (`count` of them, repeated in order), so the
 * client does no more work per request than for a bare GET /ping: a request
 * built per call (setupRequest) would cost the load generator, on the same
 * 2 cores, as much as the server's read and cap the measurement.
 */
export function randomExistingKeyReads(
  options: RandomExistingKeyReadsOptions & { count?: number },
): LoadRequest[] {
  assert.ok(Number.isInteger(options.keyCount) && options.keyCount > 0, 'keyCount > 0');
  const makeBody: KeyBody =
    options.makeBody === undefined ? (key) => JSON.stringify({ key }) : options.makeBody;
  const count = options.count ?? prebuiltReadsDefault;
  return Array.from({ length: count }, () => {
    const key = existingKeyName(Math.floor(options.random() * options.keyCount));
    return requestFor(
      { method: options.method ?? 'GET', headers: jsonHeaders },
      key,
      options.path,
      makeBody,
    );
  });
}

export interface MixedRequestsOptions {
  /** Fraction of requests that write a new key (the rest read an existing one). */
  writeShare: number;
  readPath: KeyPath;
  writePath: KeyPath;
  keyCount: number;
  keyPrefix: string;
  seed: number;
  valueBytes?: number;
}

/**
 * For LoadOptions.requestsForConnection: each request is a read of a random
 * preloaded key (`GET`, body `{"key"}`) or, with probability writeShare, a
 * write of a key no other request writes (`POST`, body `{"key","value"}`).
 */
export function mixedReadsAndWrites(
  options: MixedRequestsOptions,
): (connectionIndex: number) => LoadRequest[] {
  assert.ok(options.writeShare >= 0 && options.writeShare <= 1, 'writeShare in [0, 1]');
  const value = 'x'.repeat(options.valueBytes ?? 100);
  return (connectionIndex) => {
    const random = createSeededRandom(options.seed + connectionIndex);
    let counter = 0;
    const request: LoadRequest = {
      headers: jsonHeaders,
      setupRequest: (req) => {
        if (random() < options.writeShare) {
          const key = `${options.keyPrefix}-${connectionIndex}-${counter++}`;
          return {
            ...requestFor(req, key, options.writePath, (k) => JSON.stringify({ key: k, value })),
            method: 'POST',
          };
        }
        const key = existingKeyName(Math.floor(random() * options.keyCount));
        return {
          ...requestFor(req, key, options.readPath, (k) => JSON.stringify({ key: k })),
          method: 'GET',
        };
      },
    };
    return [request];
  };
}

export interface RandomExistingKeyWritesOptions {
  path: string;
  keyCount: number;
  seed: number;
  /** Size of the value string; default 100. */
  valueBytes?: number;
}

/**
 * For LoadOptions.requestsForConnection: each request overwrites a preloaded
 * key picked at random (`POST`, body `{"key","value"}`): the store's size
 * stays the same however long the run, and writes land all over the key space.
 */
export function randomExistingKeyWrites(
  options: RandomExistingKeyWritesOptions,
): (connectionIndex: number) => LoadRequest[] {
  assert.ok(Number.isInteger(options.keyCount) && options.keyCount > 0, 'keyCount > 0');
  const value = 'u'.repeat(options.valueBytes ?? 100);
  return (connectionIndex) => {
    const random = createSeededRandom(options.seed * 1_000 + connectionIndex);
    const request: LoadRequest = {
      method: 'POST',
      headers: jsonHeaders,
      setupRequest: (req) => {
        const key = existingKeyName(Math.floor(random() * options.keyCount));
        return requestFor(req, key, options.path, (k) => JSON.stringify({ key: k, value }));
      },
    };
    return [request];
  };
}
