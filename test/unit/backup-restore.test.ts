// Checks the backup and restore core without processes or sockets: the snapshotter copies a real
// KvStore online in its worker thread (the event loop keeps committing writes meanwhile, and every
// write committed before the copy began is in it), allows one copy at a time, stops on abort and
// leaves no temp file; restore makes
// a new node (new id, no peer cursors, no issued-clock record) and refuses every bad file or data
// dir with one clear ConfigError, leaving the dir as it was.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pino from 'pino';
import { ConfigError, PeerkvError } from '../../src/errors.ts';
import { copyInWorker } from '../../src/store/copy-in-worker.ts';
import type { KvStore } from '../../src/store/kv-store.ts';
import { databasePath } from '../../src/store/open-database.ts';
import { restoreBackup } from '../../src/store/restore-backup.ts';
import { type Snapshot, Snapshotter, TEMP_FILE_PATTERN } from '../../src/store/snapshots.ts';
import { applyRemote, dumpContent, openStore, putLocal, TempDirs } from './store-fixture.ts';

const dirs = new TempDirs();
after(() => dirs.remove());

const silent = pino({ level: 'silent' });

function snapshotter(store: KvStore, dataDir: string): Snapshotter {
  return new Snapshotter(copyInWorker(store.dbPath), {
    dataDir,
    retryAfterSeconds: 7,
    wallMs: Date.now,
    log: silent,
  });
}

function tempFiles(dataDir: string): string[] {
  return fs.readdirSync(dataDir).filter((name) => TEMP_FILE_PATTERN.test(name));
}

/** Writes a snapshot's bytes to `file` and releases it. */
async function saveSnapshot(snapshot: Snapshot, file: string): Promise<void> {
  try {
    fs.writeFileSync(file, (await snapshot.file.readFile()) as Uint8Array);
  } finally {
    await snapshot.release();
  }
}

/** A store with live keys, rewrites, tombstones, a remote entry and a peer cursor. */
function filledStore(dataDir: string, count: number): KvStore {
  const store = openStore(dataDir);
  const value = JSON.stringify('x'.repeat(200));
  for (let index = 0; index < count; index += 1) putLocal(store, `key-${index}`, value);
  for (let index = 0; index < count; index += 9) putLocal(store, `key-${index}`, null);
  applyRemote(store, [
    { key: 'remote', valueJson: '"r"', version: { timestamp: 5, nodeId: '00000000000000aa' } },
  ]);
  store.setPeerCursor('http://127.0.0.1:9', '00000000000000bb', store.seq);
  return store;
}

describe('snapshotter', () => {
  test('a copy taken while writes land holds every write committed before it began', async () => {
    const dataDir = dirs.newDir();
    const store = filledStore(dataDir, 2_000);
    const before = dumpContent(store);
    const snapshots = snapshotter(store, dataDir);
    let writes = 0;
    let writing = true;
    const writer = (async () => {
      while (writing) {
        putLocal(store, `during-${writes}`, '1');
        writes += 1;
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const snapshot = await snapshots.take(new AbortController().signal);
    writing = false;
    await writer;
    assert.ok(writes > 0, 'writes were committed while the copy was taken');
    assert.deepEqual(tempFiles(dataDir), [], 'the copy is unlinked once open');
    const file = path.join(dirs.root, 'during.db');
    const seq = snapshot.seq;
    await saveSnapshot(snapshot, file);
    const copy = new Database(file, { readonly: true });
    try {
      assert.equal(copy.pragma('integrity_check', { simple: true }), 'ok');
      assert.equal(copy.prepare('SELECT max(seq) FROM kv').pluck().get(), seq);
      const keys = new Set(copy.prepare('SELECT key FROM kv').pluck().all() as string[]);
      for (const line of before) assert.ok(keys.has(JSON.parse(line.split(' ')[0]!)), line);
      assert.equal(
        copy.pragma('journal_mode', { simple: true }),
        'delete',
        'one self-contained file',
      );
    } finally {
      copy.close();
      store.close();
    }
  });

  test('one copy at a time: a second is refused with BACKUP_RUNNING until the first is released', async () => {
    const dataDir = dirs.newDir();
    const store = filledStore(dataDir, 50);
    const snapshots = snapshotter(store, dataDir);
    const first = await snapshots.take(new AbortController().signal);
    await assert.rejects(snapshots.take(new AbortController().signal), (error: unknown) => {
      assert.ok(error instanceof PeerkvError);
      assert.equal(error.code, 'BACKUP_RUNNING');
      assert.equal(error.status, 503);
      assert.equal(error.headers['Retry-After'], '7');
      return true;
    });
    await first.release();
    await first.release(); // idempotent
    const second = await snapshots.take(new AbortController().signal);
    await second.release();
    await snapshots.close();
    await assert.rejects(snapshots.take(new AbortController().signal), /shutting down/);
    store.close();
  });

  test('an aborted copy rejects, removes its temp file and frees the slot', async () => {
    const dataDir = dirs.newDir();
    const store = filledStore(dataDir, 2_000);
    const snapshots = snapshotter(store, dataDir);
    const abort = new AbortController();
    const taking = snapshots.take(abort.signal);
    abort.abort();
    await assert.rejects(taking, /client went away/);
    assert.deepEqual(tempFiles(dataDir), []);
    assert.equal(snapshots.running, false);
    store.close();
  });

  test('leftovers of a crash are removed, other files are not', async () => {
    const dataDir = dirs.newDir();
    const store = filledStore(dataDir, 5);
    const stale = [
      'peerkv.db.backup-0123456789abcdef.tmp',
      'peerkv.db.restore-0123456789abcdef.tmp-journal',
    ];
    for (const name of [...stale, 'notes.txt', 'peerkv.db.backup-xyz.tmp']) {
      fs.writeFileSync(path.join(dataDir, name), 'x');
    }
    assert.equal(await snapshotter(store, dataDir).removeLeftovers(), 2);
    const names = fs.readdirSync(dataDir);
    for (const name of stale) assert.ok(!names.includes(name), name);
    assert.ok(names.includes('notes.txt') && names.includes('peerkv.db.backup-xyz.tmp'));
    store.close();
  });
});

/** A backup file of a filled store, and the store's content and node id. */
async function makeBackup(
  count = 300,
): Promise<{ file: string; content: string[]; nodeId: string }> {
  const dataDir = dirs.newDir();
  const store = filledStore(dataDir, count);
  const file = path.join(dirs.root, `backup-${path.basename(dataDir)}.db`);
  await saveSnapshot(await snapshotter(store, dataDir).take(new AbortController().signal), file);
  const result = { file, content: dumpContent(store), nodeId: store.nodeId };
  store.close();
  return result;
}

function assertRefused(run: () => unknown, pattern: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `a ConfigError, got ${String(error)}`);
    assert.match(error.message, pattern);
    assert.ok(!error.message.includes('\n'), 'one line');
    return true;
  });
}

describe('restore', () => {
  test('a backup becomes a new node: new id, same entries and versions, no peer cursors', async () => {
    const backup = await makeBackup();
    const dataDir = dirs.newDir();
    const report = restoreBackup({ file: backup.file, dataDir, force: false });
    assert.equal(report.nodeIdBefore, backup.nodeId);
    assert.notEqual(report.nodeIdAfter, backup.nodeId);
    assert.equal(report.replaced, false);
    assert.deepEqual(fs.readdirSync(dataDir), ['peerkv.db']);
    const db = new Database(databasePath(dataDir), { readonly: true });
    const meta = db.prepare('SELECT value FROM meta WHERE name = ?').pluck();
    assert.equal(meta.get('clock_issued'), '0', 'the new id has issued nothing');
    assert.deepEqual(JSON.parse(String(meta.get('restored_from'))), {
      nodeId: backup.nodeId,
      seq: report.seq,
    });
    assert.equal(db.prepare('SELECT count(*) FROM peers').pluck().get(), 0);
    db.close();
    const store = openStore(dataDir);
    try {
      assert.equal(store.nodeId, report.nodeIdAfter);
      assert.deepEqual(dumpContent(store), backup.content, 'entries keep their versions');
      assert.equal(store.peerCursor('http://127.0.0.1:9').cursor, 0);
      assert.equal(report.entries, backup.content.length);
      const write = putLocal(store, 'after-restore', '1');
      assert.equal(write.version.nodeId, report.nodeIdAfter, 'new writes carry the new id');
    } finally {
      store.close();
    }
  });

  test('a file that is not a peerkv backup is refused and the data dir stays empty', async () => {
    const backup = await makeBackup();
    const bytes = fs.readFileSync(backup.file);
    const cases: [string, (file: string) => void, RegExp][] = [
      [
        'text',
        (file) => fs.writeFileSync(file, 'hello, not a database\n'),
        /not a SQLite database/,
      ],
      ['empty', (file) => fs.writeFileSync(file, ''), /not a SQLite database/],
      [
        'cut short',
        (file) => fs.writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2))),
        /damaged|cut short|integrity_check/,
      ],
      [
        'another SQLite database',
        (file) => {
          const db = new Database(file);
          db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)');
          db.close();
        },
        /not a peerkv backup \(no meta table\)/,
      ],
      [
        'a newer schema',
        (file) => {
          fs.writeFileSync(file, bytes);
          const db = new Database(file);
          db.prepare("UPDATE meta SET value = '99' WHERE name = 'schema_version'").run();
          db.close();
        },
        /schema 99; this peerkv reads schemas 1 and 2/,
      ],
    ];
    for (const [name, write, pattern] of cases) {
      const file = path.join(dirs.root, `bad-${name.replaceAll(' ', '-')}.db`);
      write(file);
      const dataDir = dirs.newDir();
      assertRefused(() => restoreBackup({ file, dataDir, force: false }), pattern);
      assert.ok(!fs.existsSync(databasePath(dataDir)), `${name}: no database made`);
      if (fs.existsSync(dataDir))
        assert.deepEqual(fs.readdirSync(dataDir), [], `${name}: no temp left`);
    }
    assertRefused(
      () =>
        restoreBackup({
          file: path.join(dirs.root, 'absent.db'),
          dataDir: dirs.newDir(),
          force: false,
        }),
      /cannot be read \(ENOENT\)/,
    );
  });

  test('a non-empty data dir needs --force, which replaces its database and drops its old WAL', async () => {
    const backup = await makeBackup();
    const dataDir = dirs.newDir();
    const old = openStore(dataDir);
    putLocal(old, 'only-in-the-old-database', '1');
    old.close();
    fs.writeFileSync(`${databasePath(dataDir)}-wal`, 'a stale WAL that must not be replayed');
    const before = fs.readFileSync(databasePath(dataDir));
    assertRefused(
      () => restoreBackup({ file: backup.file, dataDir, force: false }),
      /not empty.*--force/,
    );
    assert.ok(fs.readFileSync(databasePath(dataDir)).equals(before), 'left as it was');
    const report = restoreBackup({ file: backup.file, dataDir, force: true });
    assert.equal(report.replaced, true);
    assert.ok(!fs.existsSync(`${databasePath(dataDir)}-wal`), 'the old WAL is gone');
    const store = openStore(dataDir);
    try {
      assert.deepEqual(dumpContent(store), backup.content);
    } finally {
      store.close();
    }
  });

  test('the database of a running node is never replaced, even with --force', async () => {
    const backup = await makeBackup();
    const dataDir = dirs.newDir();
    const running = openStore(dataDir);
    try {
      putLocal(running, 'live', '1');
      assertRefused(() => restoreBackup({ file: backup.file, dataDir, force: true }), /in use/);
      assert.equal(running.get('live')?.valueJson, '1');
      assert.deepEqual(tempFiles(dataDir), []);
    } finally {
      running.close();
    }
  });
});
