// Run under strace by test/unit/wal-sync.test.ts: 20 write-queue commits on a
// `--sync full` store, each awaited until flushed, with or without the flush off
// the event loop (argv: data dir, "off-thread" | "inline"). Prints a marker
// before the first commit so the trace can be cut at it.
import { HybridClock } from '../../src/clock.ts';
import { KvStore } from '../../src/store/kv-store.ts';

const [dataDir, mode] = process.argv.slice(2);
const store = new KvStore(dataDir!, 'full', new HybridClock(Date.now), undefined, {
  autoCheckpoint: false,
  flushOffThread: mode === 'off-thread',
});
process.stderr.write('COMMITS-BEGIN\n');
for (let index = 0; index < 20; index += 1) {
  store.applyMutations([{ kind: 'local', key: `k${index}`, valueJson: '"v"' }]);
  await store.flushed();
}
process.stderr.write('COMMITS-END\n');
store.close();
