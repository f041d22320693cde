// Goal: GET /backup and `peerkv restore` hold up against callers that are not allowed, not
// patient or not careful: no admin token (401/403), a second backup while one runs (503
// BACKUP_RUNNING with Retry-After), a client that stops reading (cut off after the request
// timeout, the slot freed), one that goes away mid-copy or mid-stream (no temp file left), and
// restores of a bad file or into a running node's data dir (one line, exit 2, nothing changed).
// Method: one real node with --auth-file and --request-timeout 5, holding ~24 MB of values so a
// stalled reader really stalls; raw sockets for the careless clients, the real CLI for the rest.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { TEMP_FILE_PATTERN } from '../../src/store/snapshots.ts';
import { getJson, httpRequest, putJson } from '../helpers/http.ts';
import { useOneNode, waitFor } from '../helpers/node-process.ts';
import { runPeerkv } from './node-support.ts';
import { bearer, useSecretDir, writeAuthFile } from './security-support.ts';

const secretDir = useSecretDir();
const authFile = path.join(secretDir(), 'auth.json');
const tokens = writeAuthFile(authFile, [
  { name: 'admin', permissions: ['admin'] },
  { name: 'writer', permissions: ['read', 'write'] },
]);
const admin = tokens.admin!;
const writer = tokens.writer!;
const REQUEST_TIMEOUT_SECONDS = 5;
const BIG_VALUES = 48;
const BIG_VALUE_CHARS = 500_000;
const CLI_MS = 60_000;
const WAIT_MS = 30_000;

const one = useOneNode({
  extraArgs: ['--auth-file', authFile, '--request-timeout', String(REQUEST_TIMEOUT_SECONDS)],
});

function tempFiles(): string[] {
  return fs.readdirSync(one.node.dataDir).filter((name) => TEMP_FILE_PATTERN.test(name));
}

/** GET /backup with the admin token, the body read whole; returns status, headers and bytes. */
async function fetchBackup(token = admin) {
  const answer = await request(`${one.url}/backup`, {
    headers: bearer(token),
    headersTimeout: WAIT_MS,
    bodyTimeout: WAIT_MS,
  });
  const body = Buffer.from(await answer.body.arrayBuffer());
  return { status: answer.statusCode, headers: answer.headers, body };
}

/**
 * A raw GET /backup whose reader we control: resolves once the first bytes of the answer are in,
 * with the socket (paused if `pause`) and the head of the answer.
 */
function openRawBackup(
  pause: boolean,
): Promise<{ socket: net.Socket; head: string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port: one.port, host: '127.0.0.1' });
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.write(
        `GET /backup HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${admin}\r\n\r\n`,
      );
    });
    socket.once('data', (chunk: Buffer) => {
      if (pause) socket.pause();
      socket.off('error', reject);
      socket.on('error', () => socket.destroy());
      resolve({ socket, head: chunk.toString('latin1'), closed });
    });
  });
}

async function waitBackupAvailable(message: string): Promise<void> {
  await waitFor(async () => (await fetchBackup()).status === 200, { timeoutMs: WAIT_MS, message });
  assert.deepEqual(tempFiles(), [], 'no temp file left in the data dir');
}

describe('GET /backup', () => {
  test('needs the admin permission; an admin gets the whole file with its length, type and name', async () => {
    for (let index = 0; index < BIG_VALUES; index += 1) {
      const value = `${index}`.padEnd(BIG_VALUE_CHARS, 'x');
      const answer = await putJson(`${one.url}/kv/big-${index}`, value, {
        headers: bearer(writer),
      });
      assert.equal(answer.status, 200, answer.text);
    }
    const anonymous = await getJson(`${one.url}/backup`);
    assert.equal(anonymous.status, 401, anonymous.text);
    assert.equal((anonymous.body as { code: string }).code, 'UNAUTHENTICATED');
    const notAdmin = await getJson(`${one.url}/backup`, { headers: bearer(writer) });
    assert.equal(notAdmin.status, 403, notAdmin.text);
    assert.equal((notAdmin.body as { code: string }).code, 'FORBIDDEN');

    const out = path.join(secretDir(), 'refused.db');
    const cli = await runPeerkv(['backup', '--node', one.url, '--out', out], CLI_MS);
    assert.equal(cli.code, 1, cli.stderr);
    assert.match(cli.stderr, /^peerkv backup: .*\(UNAUTHENTICATED, HTTP 401 from /);
    assert.ok(!fs.existsSync(out) && !fs.existsSync(`${out}.partial`), 'no file for a refusal');

    const { status, headers, body } = await fetchBackup();
    assert.equal(status, 200);
    assert.equal(headers['content-type'], 'application/vnd.sqlite3');
    assert.equal(Number(headers['content-length']), body.length);
    assert.ok(body.length > BIG_VALUES * BIG_VALUE_CHARS, `${body.length} bytes hold the values`);
    assert.equal(body.subarray(0, 16).toString('latin1'), 'SQLite format 3\u0000');
    const nodeId = headers['x-peerkv-node-id'];
    assert.match(
      String(headers['content-disposition']),
      new RegExp(`^attachment; filename="peerkv-${nodeId}-\\d{8}T\\d{6}Z\\.db"$`),
    );
    assert.match(String(headers['x-peerkv-backup-seq']), /^\d+$/);
    const head = await httpRequest('HEAD', `${one.url}/backup`, { headers: bearer(admin) });
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
    assert.deepEqual(tempFiles(), []);
  });

  test('one at a time: a second gets 503 BACKUP_RUNNING; a reader that stalls is cut off and frees the slot', async () => {
    const stalled = await openRawBackup(true);
    try {
      assert.match(stalled.head, /^HTTP\/1\.1 200 /);
      const second = await getJson(`${one.url}/backup`, { headers: bearer(admin) });
      assert.equal(second.status, 503, second.text);
      assert.equal((second.body as { code: string }).code, 'BACKUP_RUNNING');
      assert.match(second.headers['retry-after'] ?? '', /^\d+$/);
      const cli = await runPeerkv(
        ['backup', '--node', one.url, '--token', admin, '--out', path.join(secretDir(), 'busy.db')],
        CLI_MS,
      );
      assert.equal(cli.code, 1, cli.stderr);
      assert.match(cli.stderr, /BACKUP_RUNNING, HTTP 503/);
      // The reader stays stalled: the node cuts it off after its request timeout, which frees
      // the slot; read on, the socket then ends short of the Content-Length.
      await waitBackupAvailable('a backup is possible again while the stalled reader still waits');
      const length = Number(/\r\ncontent-length: (\d+)\r\n/i.exec(stalled.head)?.[1]);
      let received =
        Buffer.byteLength(stalled.head, 'latin1') - stalled.head.indexOf('\r\n\r\n') - 4;
      stalled.socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
      });
      stalled.socket.resume();
      await stalled.closed;
      assert.ok(received < length, `cut off after ${received} of ${length} bytes`);
    } finally {
      stalled.socket.destroy();
    }
  });

  test('a client that goes away mid-stream or before the answer leaves no temp file', async () => {
    const midStream = await openRawBackup(false);
    midStream.socket.destroy();
    await waitBackupAvailable('a backup is possible after a client left mid-stream');

    const socket = net.connect({ port: one.port, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.write(
          `GET /backup HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${admin}\r\n\r\n`,
          () => {
            socket.destroy();
            resolve();
          },
        );
      });
    });
    await waitBackupAvailable('a backup is possible after a client left at once');
  });
});

describe('peerkv restore', () => {
  test("a bad file or a running node's data dir: one line, exit 2, nothing changed", async () => {
    const dir = secretDir();
    const text = path.join(dir, 'notes.txt');
    fs.writeFileSync(text, 'not a database\n');
    const target = path.join(dir, 'restore-target');
    const bad = await runPeerkv(['restore', text, '--data-dir', target], CLI_MS);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /^peerkv: .*notes\.txt is not a SQLite database[^\n]*\n$/);
    assert.ok(!fs.existsSync(path.join(target, 'peerkv.db')));

    const good = path.join(dir, 'good.db');
    const backup = await runPeerkv(
      ['backup', '--node', one.url, '--token', admin, '--out', good],
      CLI_MS,
    );
    assert.equal(backup.code, 0, backup.stderr);
    const live = await runPeerkv(
      ['restore', good, '--data-dir', one.node.dataDir, '--force'],
      CLI_MS,
    );
    assert.equal(live.code, 2, live.stderr);
    assert.match(
      live.stderr,
      /^peerkv: the database in --data-dir .* is in use \(is a node running on it\?\); stop it first\n$/,
    );
    const still = await getJson(`${one.url}/kv/big-0`, { headers: bearer(writer) });
    assert.equal(still.status, 200, 'the running node keeps its data');
    assert.deepEqual(tempFiles(), []);
  });
});
