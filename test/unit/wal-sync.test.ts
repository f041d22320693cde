// WalSync: the off-loop WAL flush of `--sync full` coalesces, keeps commit order, and a failure is final.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { HybridClock } from '../../src/clock.ts';
import { KvStore } from '../../src/store/kv-store.ts';
import { flushFile, WalSync } from '../../src/store/wal-sync.ts';
import { rejectsPeerkv } from './assert-peerkv-error.ts';

const root = mkdtempSync(join(tmpdir(), 'peerkv-walsync-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A flush the test finishes by hand. */
function manualFlush() {
  const pending: { resolve(): void; reject(error: unknown): void }[] = [];
  const flush = (_path: string) =>
    new Promise<void>((resolve, reject) => pending.push({ resolve, reject }));
  return { pending, flush };
}

describe('WalSync', () => {
  test('one flush at a time; everyone who asks while it runs shares the next one', async () => {
    const { pending, flush } = manualFlush();
    const sync = new WalSync('/wal', flush);
    const order: string[] = [];
    const a = sync.flushed().then(() => order.push('a'));
    const b = sync.flushed().then(() => order.push('b'));
    const c = sync.flushed().then(() => order.push('c'));
    assert.equal(pending.length, 1, 'b and c wait: the running flush may predate their commits');
    pending[0]!.resolve();
    await a;
    await nextTurn();
    assert.equal(pending.length, 2, 'the next flush starts when the first is done');
    assert.deepEqual(order, ['a']);
    pending[1]!.resolve();
    await Promise.all([b, c]);
    assert.deepEqual(order, ['a', 'b', 'c']);
    assert.equal(sync.flushes, 2);
    const d = sync.flushed().then(() => order.push('d'));
    assert.equal(pending.length, 3, 'idle again: a new ask starts a flush at once');
    pending[2]!.resolve();
    await d;
    assert.deepEqual(order, ['a', 'b', 'c', 'd']);
  });

  test('a failed flush is final: STORAGE_FAILED (500) now and for every later ask', async () => {
    const { pending, flush } = manualFlush();
    const told: string[] = [];
    const sync = new WalSync('/wal', flush, (error) => told.push(error.code));
    const first = sync.flushed();
    const second = sync.flushed();
    pending[0]!.reject(Object.assign(new Error('I/O error'), { code: 'EIO' }));
    const error = await rejectsPeerkv(first, 'STORAGE_FAILED');
    assert.equal(error.status, 500);
    assert.match(error.message, /EIO.*restart the node/);
    await rejectsPeerkv(second, 'STORAGE_FAILED');
    await rejectsPeerkv(sync.flushed(), 'STORAGE_FAILED');
    assert.equal(pending.length, 1, 'no flush is tried after a failure');
    assert.equal(sync.failure, error);
    assert.deepEqual(told, ['STORAGE_FAILED'], 'told once');
  });

  test('flushFile flushes an existing file and treats a missing WAL as flushed', async () => {
    const file = join(root, 'some-wal');
    writeFileSync(file, 'frames');
    await flushFile(file);
    await flushFile(join(root, 'no-such-wal'));
    await assert.rejects(flushFile(join(root, 'no-dir', 'x', '..', '..', 'some-wal', 'y')));
  });
});

describe('KvStore with commits flushed off the event loop', () => {
  test('--sync full: its commits wait for flushed(), at FULL again after each; --sync normal never waits', async () => {
    const full = new KvStore(join(root, 'full'), 'full', new HybridClock(Date.now), undefined, {
      flushOffThread: true,
    });
    full.applyMutations([{ kind: 'local', key: 'a', valueJson: '1' }]);
    const flushed = full.flushed();
    assert.ok(flushed instanceof Promise);
    await flushed;
    assert.equal(full.walFlushes, 1);
    assert.equal(full.get('a')?.valueJson, '1');
    // Other transactions (cursors, membership) still fsync as they commit.
    assert.equal(full.syncLevel(), 2, 'synchronous is FULL outside the write queue commits');
    full.close();
    const normal = new KvStore(
      join(root, 'normal'),
      'normal',
      new HybridClock(Date.now),
      undefined,
      {
        flushOffThread: true,
      },
    );
    normal.applyMutations([{ kind: 'local', key: 'a', valueJson: '1' }]);
    assert.equal(normal.flushed(), null);
    normal.close();
    const inline = new KvStore(join(root, 'inline'), 'full', new HybridClock(Date.now));
    inline.applyMutations([{ kind: 'local', key: 'a', valueJson: '1' }]);
    assert.equal(inline.flushed(), null, 'without the option the commit fsynced itself');
    inline.close();
  });
});

const straceMissing = spawnSync('strace', ['-V']).status !== 0 ? 'strace is not installed' : false;

describe('the commits, seen from the kernel', { skip: straceMissing }, () => {
  /** fsync and fdatasync calls between the helper's markers, by the thread that made them. */
  function syscallsOfCommits(mode: 'off-thread' | 'inline') {
    const trace = join(root, `trace-${mode}.txt`);
    const helper = join(import.meta.dirname, '..', 'helpers', 'commit-syscalls.ts');
    const child = spawnSync(
      'strace',
      [
        '-f',
        '-e',
        'trace=fsync,fdatasync,write',
        '-o',
        trace,
        process.execPath,
        '--import',
        'tsx',
        helper,
        join(root, `commits-${mode}`),
        mode,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(child.status, 0, child.stderr);
    const lines = readFileSync(trace, 'utf8').split('\n');
    const begin = lines.findIndex((line) => line.includes('COMMITS-BEGIN'));
    const end = lines.findIndex((line) => line.includes('COMMITS-END'));
    assert.ok(begin >= 0 && end > begin, 'the markers are in the trace');
    const mainPid = lines[begin]!.split(/\s+/)[0];
    const calls = lines.slice(begin, end);
    const count = (name: string, onMain: boolean) =>
      calls.filter(
        (line) => line.includes(`${name}(`) && (line.split(/\s+/)[0] === mainPid) === onMain,
      ).length;
    return {
      fsyncOnLoop: count('fsync', true),
      fdatasyncOnLoop: count('fdatasync', true),
      fdatasyncOffLoop: count('fdatasync', false),
    };
  }

  test('off the event loop: no fsync on the committing thread, an fdatasync per commit on the pool', () => {
    const seen = syscallsOfCommits('off-thread');
    assert.equal(seen.fsyncOnLoop, 0, JSON.stringify(seen));
    assert.equal(seen.fdatasyncOnLoop, 0, JSON.stringify(seen));
    assert.ok(seen.fdatasyncOffLoop >= 20, JSON.stringify(seen));
  });

  test('the control: without it, SQLite fsyncs the WAL on the committing thread at every commit', () => {
    const seen = syscallsOfCommits('inline');
    assert.ok(seen.fsyncOnLoop >= 20, JSON.stringify(seen));
    assert.equal(seen.fdatasyncOffLoop, 0, JSON.stringify(seen));
  });
});
