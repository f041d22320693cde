// Checks that what a peer refused stays held over a restart: the sender skips a refused entry and
// its cursor moves past it, but the acknowledgement the tombstone horizon trusts stays below the
// refused version until a resync delivers it — also for a sender started again on the same store
// (simulator seed 47652: a restart forgot the refusal, the horizon passed the refused write, and
// the peer then refused it for good as older than its horizon).
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { PeerSender } from '../../src/replication/peer-sender.ts';
import { PeerCallError } from '../../src/replication/peer-transport.ts';
import { openStore, putLocal, senderToFake, TempDirs } from './store-fixture.ts';

const dirs = new TempDirs();
after(() => dirs.remove());

const PEER = '00000000000000aa';

function senderFor(store: ReturnType<typeof openStore>, refuse: string): PeerSender {
  return senderToFake(store, async (_method, _path, body) => {
    const parsed = JSON.parse(body!) as { entries: { key: string }[] };
    if (parsed.entries.some((entry) => entry.key === refuse)) {
      throw new PeerCallError('POST /replicate answered 400', { status: 400 });
    }
    return { json: {}, bytes: 0, headers: {} };
  });
}

async function drained(sender: PeerSender): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (sender.pending > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(sender.pending, 0, 'everything was sent or skipped');
}

describe('a refused entry over a restart', () => {
  test('the acknowledgement stays below it until a resync settles it', async () => {
    const dir = dirs.newDir();
    let store = openStore(dir);
    putLocal(store, 'before', '1');
    const refused = putLocal(store, 'refused', '2');
    putLocal(store, 'after', '3');
    store.setPeerCursor('http://127.0.0.1:1', PEER, 0);
    const first = senderFor(store, 'refused');
    first.activate(PEER);
    await drained(first);
    assert.equal(first.cursor, store.seq, 'the cursor moved past the refused entry');
    assert.equal(first.refusedLowest, refused.version.timestamp);
    first.stop();
    store.close();

    store = openStore(dir);
    const second = senderFor(store, 'nothing');
    assert.equal(second.cursor, store.seq);
    assert.equal(second.refusedLowest, refused.version.timestamp, 'the refusal was kept');
    second.activate(PEER);
    // A resync that began after the restart delivered everything: the refusal is settled.
    second.settleRefusals(second.refusals);
    second.stop();
    store.close();

    store = openStore(dir);
    const third = senderFor(store, 'nothing');
    assert.equal(third.refusedLowest, Number.POSITIVE_INFINITY, 'settled for good');
    store.close();
  });
});
