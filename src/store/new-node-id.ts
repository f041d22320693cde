/**
 * `peerkv new-id --data-dir <dir>`: gives a stopped node a fresh node id, for
 * when two data dirs share one (a copied dir or database file) and their
 * versions could collide. Entries keep the versions they were written with;
 * the peers see a new node, reset their cursors toward it and resync, which
 * moves only what differs.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { ConfigError } from '../errors.ts';
import { databasePath, openDatabase } from './open-database.ts';

export function assignNewNodeId(dataDir: string): { before: string; after: string } {
  if (!existsSync(databasePath(dataDir))) {
    throw new ConfigError(`--data-dir ${dataDir} holds no peerkv database`);
  }
  const db = openDatabase(dataDir, 'full');
  try {
    const read = db.prepare("SELECT value FROM meta WHERE name = 'node_id'").pluck();
    const before = String(read.get());
    const after = randomBytes(8).toString('hex');
    db.prepare("UPDATE meta SET value = ? WHERE name = 'node_id'").run(after);
    return { before, after };
  } finally {
    db.close();
  }
}
