// bench/lib/load.ts's ownProcess: the load runs in a child process (bench/lib/load-child.ts) and
// comes back as the same LoadResult; options that cannot travel as JSON are refused.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { BenchError } from '../../bench/lib/bench-error.ts';
import { runLoad } from '../../bench/lib/load.ts';

test('an own-process load answers with the run of a child process', async () => {
  const clients = new Set<number>();
  const server = createServer((req, res) => {
    clients.add(req.socket.remotePort!);
    res.end('{"hash":"0"}');
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  try {
    const { port } = server.address() as AddressInfo;
    const result = await runLoad({
      label: 'own process',
      url: `http://127.0.0.1:${port}/store/hash`,
      connections: 1,
      durationSec: 2,
      overallRate: 50,
      ownProcess: true,
      progressStream: null,
    });
    assert.equal(result.label, 'own process');
    assert.equal(result.connections, 1);
    // The rate travelled to the child: unlimited, one connection to this server makes thousands
    // in 2 s. The bounds are loose: on a loaded machine autocannon catches up on late ticks.
    assert.ok(result.requestsTotal >= 20 && result.requestsTotal <= 250, `${result.requestsTotal}`);
    assert.ok(clients.size >= 1, 'the child connected');
    assert.equal(result.non2xxCount + result.errorCount, 0);
    assert.ok(result.latencyMsP99 > 0 && result.latencyMsP99 >= result.latencyMsP50);
  } finally {
    server.close();
  }
});

test('an own-process load refuses options that are functions', async () => {
  await assert.rejects(
    runLoad({
      label: 'functions',
      url: 'http://127.0.0.1:9/',
      connections: 1,
      durationSec: 1,
      requestsForConnection: () => [],
      ownProcess: true,
    }),
    (error: unknown) => error instanceof BenchError && error.code === 'BAD_OPTION',
  );
});
