// undici-core: the node's Pool and buildConnector are undici's own, work on their own, and a
// node's modules never load undici's index (fetch, WebSocket, the cache: ~5 MiB of idle RSS),
// nor pino-pretty when the node logs JSON.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import * as undici from 'undici';
import { buildConnector, Pool } from '../../src/replication/undici-core.ts';
import { modulesLoadedBy } from '../helpers/loaded-modules.ts';

describe('undici-core', () => {
  test('exports the very Pool and buildConnector that undici exports', () => {
    assert.equal(Pool, undici.Pool);
    assert.equal(buildConnector, undici.buildConnector);
  });

  test("a Pool from it answers request() (undici's API is on the dispatcher)", async () => {
    const server = createServer((_req, res) => res.end('pong'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 1 });
    try {
      const answer = await pool.request({ path: '/', method: 'GET' });
      assert.equal(answer.statusCode, 200);
      assert.equal(await answer.body.text(), 'pong');
    } finally {
      await pool.close();
      server.close();
    }
  });

  test("the node's modules load undici's pool but not its index, nor pino-pretty", () => {
    const loaded = modulesLoadedBy([
      "await import('./src/node.ts');",
      "(await import('./src/log.ts')).createRootLogger('silent', {}, 'json');",
    ]);
    const shown = loaded.join('\n');
    assert.ok(
      loaded.some((path) => path.endsWith('/undici/lib/dispatcher/pool.js')),
      shown,
    );
    assert.ok(!loaded.some((path) => path.endsWith('/undici/index.js')), shown);
    assert.ok(!loaded.some((path) => path.includes('/node_modules/pino-pretty/')), shown);
  });
});
