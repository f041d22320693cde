// Checks the ways users start peerkv without the test harness: the bin (`node bin/peerkv.js node`)
// and the embedded default `peerkv cluster` that `npm start` runs; by spawning them on free
// loopback ports with temp data dirs, pinging every node, and stopping them with SIGTERM.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { getJson, postJson } from '../helpers/http.ts';
import { freePort, PROJECT_ROOT, waitFor } from '../helpers/node-process.ts';
import {
  consecutiveFreePorts,
  pingOk,
  portRefuses,
  Spawned,
  spawnPeerkv,
  TempDirs,
} from './node-support.ts';

const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 15_000;
const REPLICATION_TIMEOUT_MS = 15_000;
const CLUSTER_NODES = 3;

const dirs = new TempDirs();
const started: Spawned[] = [];

after(async () => {
  for (const spawned of started) spawned.killGroup();
  await Promise.allSettled(started.map((spawned) => spawned.waitExit(STOP_TIMEOUT_MS)));
  await dirs.removeAll();
});

describe('starting peerkv as a user does', () => {
  test('the bin starts a node that answers /ping, and SIGTERM stops it with code 0', async () => {
    const dir = await dirs.make();
    const port = await freePort();
    const bin = path.join(PROJECT_ROOT, 'bin', 'peerkv.js');
    // No --import tsx: the bin has to load the TypeScript sources by itself.
    const node = new Spawned([
      bin,
      'node',
      '--port',
      String(port),
      '--data-dir',
      path.join(dir, 'd'),
    ]);
    started.push(node);
    const url = `http://127.0.0.1:${port}`;
    await waitFor(() => pingOk(url), { timeoutMs: READY_TIMEOUT_MS, message: 'bin node ready' });
    const write = await postJson(`${url}/store`, { key: 'hello', value: 'world' });
    assert.equal(write.status, 200, write.text);
    node.child.kill('SIGTERM');
    const exit = await node.waitExit(STOP_TIMEOUT_MS);
    assert.equal(exit.code, 0, exit.stderr);
    assert.ok(await portRefuses(port));
  });

  test('`peerkv cluster` starts three nodes, prints their URLs and a curl example, and SIGTERM stops them all', async () => {
    const dir = await dirs.make();
    const basePort = await consecutiveFreePorts(CLUSTER_NODES);
    const ports = Array.from({ length: CLUSTER_NODES }, (_, index) => basePort + index);
    const urls = ports.map((port) => `http://127.0.0.1:${port}`);
    // Its own process group, so the after() hook can reach the nodes even if the parent dies.
    const cluster = spawnPeerkv(['cluster', '--base-port', String(basePort), '--data-dir', dir], {
      detached: true,
    });
    started.push(cluster);

    for (const url of urls) {
      await waitFor(() => pingOk(url), {
        timeoutMs: READY_TIMEOUT_MS,
        message: `cluster node ${url} ready; stdout so far:\n${cluster.stdout.slice(-2000)}`,
      });
    }
    for (const url of urls) {
      assert.ok(
        cluster.stdout.includes(url),
        `stdout names ${url}:\n${cluster.stdout.slice(0, 2000)}`,
      );
    }
    assert.match(cluster.stdout, /curl .*\/store/, 'stdout shows a curl example');

    // The printed example works: a write on the first node is read on the last one.
    const write = await postJson(`${urls[0]}/store`, { key: 'hello', value: 'world' });
    assert.equal(write.status, 200, write.text);
    await waitFor(
      async () =>
        (await getJson(`${urls.at(-1)}/store/key?key=hello`)).text === '{"value":"world"}',
      { timeoutMs: REPLICATION_TIMEOUT_MS, message: 'the write reaches the last node' },
    );

    cluster.child.kill('SIGTERM');
    const exit = await cluster.waitExit(STOP_TIMEOUT_MS);
    assert.equal(exit.signal, null, `cluster exit ${exit.code} ${exit.signal}\n${exit.stderr}`);
    assert.equal(exit.code, 0, `cluster exit code\n${exit.stderr}\n${exit.stdout.slice(-2000)}`);
    for (const port of ports) {
      assert.ok(await portRefuses(port), `node on ${port} is gone`);
    }
    // Every node shut down cleanly (each logged its stop), none was killed.
    const stops = exit.stdout.split('\n').filter((line) => line.includes('"msg":"node stopped"'));
    assert.equal(stops.length, CLUSTER_NODES, exit.stdout.slice(-3000));
  });
});
