// Checks the watch loop without sockets: a Watcher over a fake change source and a fake sink that
// can refuse writes. Replay then live delivery has no gap and no duplicate; the prefix filter;
// a sink that stops draining gets one error event once the watcher falls too far behind; and a
// watcher never holds more than one page of events waiting for the sink.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Change } from '../../src/store/types.ts';
import { Watcher, type WatcherEnd, type WatchSource } from '../../src/watch/watcher.ts';

class FakeSource implements WatchSource {
  readonly changes: Change[] = [];
  get seq(): number {
    return this.changes.length;
  }
  add(key: string): void {
    const seq = this.changes.length + 1;
    this.changes.push({
      key,
      valueJson: String(seq),
      version: { timestamp: seq, nodeId: '00000000000000aa' },
      seq,
      sourceNodeId: '00000000000000aa',
    });
  }
  changesSince(afterSeq: number, limit: number): Change[] {
    return this.changes.slice(afterSeq, afterSeq + limit);
  }
  wallMs(): number {
    return 0;
  }
}

class FakeSink extends EventEmitter {
  readonly written: string[] = [];
  accepting = true;
  ended = false;
  write(text: string): boolean {
    this.written.push(text);
    return this.accepting;
  }
  end(): void {
    this.ended = true;
  }
  ids(): number[] {
    return [...this.written.join('').matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
  }
}

function newWatcher(source: FakeSource, sink: FakeSink, afterSeq: number, ends: WatcherEnd[]) {
  return new Watcher(
    source,
    sink,
    {
      matches: (key) => key.startsWith('p/'),
      afterSeq,
      pageRows: 10,
      lagChangesMax: 50,
      drainTimeoutMs: 60_000,
    },
    (why) => ends.push(why),
  );
}

describe('Watcher', () => {
  test('replay then live: every change after the resume point once, in order, under the prefix', async () => {
    const source = new FakeSource();
    for (let i = 0; i < 35; i += 1) source.add(i % 5 === 0 ? `q/${i}` : `p/${i}`);
    const sink = new FakeSink();
    const ends: WatcherEnd[] = [];
    const watcher = newWatcher(source, sink, 7, ends);
    watcher.notify();
    for (let i = 0; i < 12; i += 1) {
      source.add(`p/live${i}`);
      if (i % 3 === 0) watcher.notify();
      await nextTurn();
    }
    watcher.notify();
    await nextTurn();
    const expected = source.changes
      .filter((change) => change.seq > 7 && change.key.startsWith('p/'))
      .map((change) => change.seq);
    assert.deepEqual(sink.ids(), expected);
    watcher.close();
    assert.deepEqual(ends, ['closed']);
  });

  test('a sink that stops draining: one page waits, then an error event once 50 behind', async () => {
    const source = new FakeSource();
    const sink = new FakeSink();
    const ends: WatcherEnd[] = [];
    const watcher = newWatcher(source, sink, 0, ends);
    sink.accepting = false;
    for (let i = 0; i < 10; i += 1) source.add(`p/${i}`);
    watcher.notify();
    await nextTurn();
    assert.equal(sink.written.length, 1, 'one page written, then the watcher waits for drain');
    for (let i = 0; i < 60; i += 1) {
      source.add(`p/more${i}`);
      watcher.notify();
    }
    await nextTurn();
    assert.deepEqual(ends, ['too-slow']);
    assert.ok(sink.ended);
    assert.match(sink.written.at(-1)!, /^event: error\ndata: .*"code":"WATCH_TOO_SLOW"/);
    assert.equal(sink.written.length, 2, 'nothing but the error event after the stall');
  });

  test('after a drain the watcher continues where it stopped', async () => {
    const source = new FakeSource();
    const sink = new FakeSink();
    const watcher = newWatcher(source, sink, 0, []);
    sink.accepting = false;
    for (let i = 0; i < 25; i += 1) source.add(`p/${i}`);
    watcher.notify();
    await nextTurn();
    sink.accepting = true;
    sink.emit('drain');
    await nextTurn();
    await nextTurn();
    assert.deepEqual(
      sink.ids(),
      source.changes.map((change) => change.seq),
    );
    watcher.close();
  });
});
