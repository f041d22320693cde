/**
 * The two parts of undici a node uses, `Pool` and `buildConnector`, loaded
 * without the rest. `import 'undici'` also loads fetch, WebSocket, the cache
 * and the mock agents: about 5 MiB of an idle node's RSS (bench/ANALYSIS.md,
 * "Memory, measured again"). The types are undici's own, and
 * `test/unit/undici-core.test.ts` checks these are the very values undici
 * exports, so an undici that moves its files fails there, not in a node.
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const load = createRequire(import.meta.url);

export const Pool = load('undici/lib/dispatcher/pool.js') as typeof Undici.Pool;
export type Pool = Undici.Pool;
export const buildConnector = load('undici/lib/core/connect.js') as typeof Undici.buildConnector;
export type Connector = Undici.buildConnector.connector;

// What undici's index.js does once: give every dispatcher request(), stream() and the rest.
Object.assign(
  (load('undici/lib/dispatcher/dispatcher.js') as { prototype: object }).prototype,
  load('undici/lib/api/index.js'),
);
