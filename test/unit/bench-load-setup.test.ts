// bench/lib/load.ts leaves out of the latencies the answers to requests sent while autocannon
// was still building its connections: those waited on autocannon's own loop (~10 ms a
// connection for 1,000 prebuilt requests), not on the server, and were every read run's
// "latency max" (400-770 ms) until 2026-12-04.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { runLoad } from '../../bench/lib/load.ts';
import { createSeededRandom, randomExistingKeyReads } from '../../bench/lib/request-generators.ts';

test('answers to requests sent while autocannon builds its connections are left out', async () => {
  const server = createServer((_req, res) => res.end('{"value":"x"}'));
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  try {
    const { port } = server.address() as AddressInfo;
    const connections = 20;
    const result = await runLoad({
      label: 'setup',
      url: `http://127.0.0.1:${port}/store/key`,
      connections,
      durationSec: 1,
      requests: randomExistingKeyReads({
        path: '/store/key',
        keyCount: 1_000,
        random: createSeededRandom(1),
        count: 2_000,
      }),
      progressStream: null,
    });
    assert.equal(result.non2xxCount + result.errorCount, 0);
    assert.ok(result.setupMs > 0, `setupMs ${result.setupMs}`);
    // One request per connection is out before the build ends (no pipelining): the first
    // connections' certainly, the last one's perhaps.
    assert.ok(
      result.latenciesLeftOut >= 1 && result.latenciesLeftOut <= connections,
      `left out ${result.latenciesLeftOut}`,
    );
    assert.ok(result.requestsTotal > result.latenciesLeftOut, 'the rest were recorded');
    assert.ok(result.latencyMsP50 > 0);
  } finally {
    server.close();
  }
});
