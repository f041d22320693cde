/**
 * `peerkv backup [--out FILE]`: a node's database copy (GET /backup) to
 * stdout, or to FILE through FILE.partial, synced and renamed only once the
 * whole copy is in, so FILE is never a cut-short backup.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import type { PeerkvClient } from '../client/client.ts';
import type { BackupResult } from '../client/index.ts';
import { ConfigError } from '../errors.ts';
import type { CommandIo } from './commands.ts';
import type { CommandOptions } from './options.ts';

export async function backupCommand(
  client: PeerkvClient,
  options: CommandOptions,
  io: CommandIo,
): Promise<number> {
  const startedMonoMs = performance.now();
  let result: BackupResult;
  if (options.out === undefined) {
    if (io.stdout.isTTY) {
      throw new ConfigError(
        'backup: the copy is a binary file: redirect stdout (> FILE.db) or give --out FILE.db',
      );
    }
    result = await client.backup(io.stdout, { timeoutMs: options.timeoutMs, end: false });
  } else {
    result = await backupToFile(client, options.out, options.timeoutMs);
  }
  const seconds = Math.round(performance.now() - startedMonoMs) / 1000;
  const summary = { ...result, file: options.out ?? null, seconds };
  const target = options.out === undefined ? io.stderr : io.stdout;
  if (options.json) target.write(`${JSON.stringify(summary)}\n`);
  else {
    const where = options.out === undefined ? 'stdout' : options.out;
    target.write(
      `backup of node ${result.nodeId} (${result.node}), change sequence ${result.seq}: ${result.bytes.toLocaleString('en-US')} bytes in ${seconds} s -> ${where}\n`,
    );
  }
  return 0;
}

async function backupToFile(
  client: PeerkvClient,
  out: string,
  timeoutMs: number,
): Promise<BackupResult> {
  const partial = `${out}.partial`;
  try {
    await (await open(partial, 'w')).close();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(`--out ${out}: cannot write ${partial} (${code})`);
  }
  let result: BackupResult;
  try {
    const file = createWriteStream(partial);
    const closed = once(file, 'close');
    result = await client.backup(file, { timeoutMs });
    await closed;
    // On disk before it takes the name: a FILE that exists is a whole backup.
    const handle = await open(partial, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
  await rename(partial, out);
  return result;
}
