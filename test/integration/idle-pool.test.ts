// A nearly idle node ends its pool threads: a write a second (and the tombstone horizon's own
// row) is checkpointed on the node's connection, not in a worker kept alive for it (~9 MiB of
// idle RSS, bench/ANALYSIS.md "Idle memory"). The writes stay readable and the WAL short.
// Waits out the pool's idle timeout (limits.poolIdleTimeoutMs, 30 s).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { limits } from '../../src/limits.ts';
import { getJson, httpRequest, postJson, sleep } from '../helpers/http.ts';
import { useOneNode, waitFor } from '../helpers/node-process.ts';

/** The value of one sample line of the node's /metrics (0 when absent). */
async function metric(url: string, line: string): Promise<number> {
  const text = (await httpRequest('GET', `${url}/metrics`)).text;
  const found = text.split('\n').find((sample) => sample.startsWith(`${line} `));
  return found === undefined ? 0 : Number(found.slice(line.length + 1));
}

describe('an idle node', () => {
  const one = useOneNode();

  test('ends its pool threads while a write now and then is checkpointed by the node', async () => {
    // The start-up scrub ran in the pool: a thread starts, then idles out.
    let written = 0;
    let writing = true;
    const writer = (async () => {
      while (writing) {
        const answer = await postJson(`${one.url}/store`, { key: `k${written}`, value: written });
        assert.equal(answer.status, 200);
        written += 1;
        await sleep(1_000);
      }
    })();
    try {
      await waitFor(async () => (await metric(one.url, 'peerkv_pool_threads')) === 0, {
        timeoutMs: limits.poolIdleTimeoutMs + 30_000,
        intervalMs: 500,
        message: 'the pool to end its threads',
      });
      const nodeCheckpoints = 'peerkv_wal_checkpoint_duration_seconds_count{thread="node"}';
      const before = await metric(one.url, nodeCheckpoints);
      const writtenBefore = written;
      await waitFor(async () => written >= writtenBefore + 3, {
        timeoutMs: 10_000,
        message: 'writes',
      });
      await waitFor(async () => (await metric(one.url, nodeCheckpoints)) > before, {
        timeoutMs: 10_000,
        message: 'a checkpoint on the node thread',
      });
      assert.equal(await metric(one.url, 'peerkv_pool_threads'), 0, 'no thread started for it');
      assert.ok((await metric(one.url, 'peerkv_wal_frames')) < 100, 'the WAL stays short');
    } finally {
      writing = false;
      await writer;
    }
    for (let index = 0; index < written; index += 1) {
      const answer = await getJson(`${one.url}/store/key?key=k${index}`);
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body, { value: index });
    }
  });
});
