// Checks the compiled node, the way production runs it: a copy of the checkout (bin/, src/,
// workers/, package.json, tsconfigs) under .tmp/ in the repo (so its imports find the repo's
// node_modules) is built with `node bin/build.js`, then its bin starts a node from dist/, with no
// tsx: /readyz (the start-up digest scrub in a compiled pool worker), a write and a read, a backup
// (the compiled copy worker), no esbuild process, SIGTERM -> exit 0. Then a source edit makes the
// build stale, so the bin would run the sources. Builds into its own copy: `npm pack` (the
// client-package test) may rebuild the repo's dist/ meanwhile.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { distState, STAMP_FILE } from '../../bin/dist.js';
import { getJson, httpRequest, postJson } from '../helpers/http.ts';
import { freePort, PROJECT_ROOT, waitFor } from '../helpers/node-process.ts';
import { portRefuses, Spawned, TempDirs } from './node-support.ts';

const run = promisify(execFile);
const BUILD_TIMEOUT_MS = 180_000;
const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 15_000;
const LOG_LINE_TIMEOUT_MS = 5_000;
const COPIED = ['bin', 'src', 'workers', 'package.json', 'tsconfig.json', 'tsconfig.build.json'];
const SQLITE_HEADER = 'SQLite format 3\0';

const dirs = new TempDirs();
const started: Spawned[] = [];
let root = '';

before(async () => {
  await fsp.mkdir(path.join(PROJECT_ROOT, '.tmp'), { recursive: true });
  root = await fsp.mkdtemp(path.join(PROJECT_ROOT, '.tmp', 'compiled-test-'));
  for (const name of COPIED) {
    await fsp.cp(path.join(PROJECT_ROOT, name), path.join(root, name), { recursive: true });
  }
  await run(process.execPath, [path.join(root, 'bin', 'build.js')], {
    cwd: root,
    timeout: BUILD_TIMEOUT_MS,
  });
});

after(async () => {
  for (const spawned of started) spawned.killGroup();
  await Promise.allSettled(started.map((spawned) => spawned.waitExit(STOP_TIMEOUT_MS)));
  await dirs.removeAll();
  if (root !== '' && process.env.PEERKV_KEEP_TEST_DIRS !== '1') {
    await fsp.rm(root, { recursive: true, force: true });
  }
});

/** Pids of the processes whose parent is `pid` (from /proc; Linux). */
function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      // The process ended between readdir and read: not a child any more.
      continue;
    }
    const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (parent === pid) children.push(Number(entry));
  }
  return children;
}

describe('the compiled node', () => {
  test('the build writes dist/ with its stamp and the assets, and a second build keeps it', async () => {
    const state = distState(root);
    assert.ok(state.current, `fresh build is ${JSON.stringify(state)}`);
    for (const file of ['src/main.js', 'workers/store-tasks.js', 'src/ui/index.html', STAMP_FILE]) {
      await fsp.access(path.join(root, 'dist', file));
    }
    const again = await run(process.execPath, [path.join(root, 'bin', 'build.js')], {
      cwd: root,
      timeout: BUILD_TIMEOUT_MS,
    });
    assert.match(again.stdout, /is current/);
  });

  test('the bin runs dist/: ready, writes, reads, backs up, without tsx, and stops with 0', async () => {
    const dir = await dirs.make();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const node = new Spawned([
      path.join(root, 'bin', 'peerkv.js'),
      'node',
      '--port',
      String(port),
      '--data-dir',
      path.join(dir, 'd'),
      '--log-format',
      'json',
    ]);
    started.push(node);
    // Ready only once the start-up digest scrub ran, in a pool worker: the compiled task loaded.
    await waitFor(
      async () => (await getJson(`${url}/readyz`, { timeoutMs: 1_000 })).status === 200,
      {
        timeoutMs: READY_TIMEOUT_MS,
        message: `compiled node ready; stderr: ${node.stderr.slice(-2000)}`,
      },
    );
    // The log line may reach this process after /readyz answers (pino writes asynchronously,
    // and the pipe is read on its own turn): waited for, not read at once (a CI flake).
    const startedLine = await waitFor(
      () => node.stdout.split('\n').find((line) => line.includes('"msg":"node started"')),
      { timeoutMs: LOG_LINE_TIMEOUT_MS, message: `"node started" on the compiled node's stdout` },
    );
    assert.match(startedLine, /"code":"compiled"/, node.stdout.slice(-2000));
    const write = await postJson(`${url}/store`, { key: 'hello', value: 'world' });
    assert.equal(write.status, 200, write.text);
    assert.equal((await getJson(`${url}/store/key?key=hello`)).text, '{"value":"world"}');
    const backup = await httpRequest('GET', `${url}/backup`, { timeoutMs: 10_000 });
    assert.equal(backup.status, 200, backup.text.slice(0, 200));
    assert.ok(backup.text.startsWith(SQLITE_HEADER), 'the backup is a SQLite file');
    // tsx would have started esbuild's service as a child process.
    assert.deepEqual(childPids(node.child.pid!), [], 'a compiled node starts no child process');
    node.child.kill('SIGTERM');
    const exit = await node.waitExit(STOP_TIMEOUT_MS);
    assert.equal(exit.code, 0, exit.stderr);
    assert.ok(await portRefuses(port));
  });

  test('a source edited after the build makes dist/ stale, so the bin runs the sources', async () => {
    const limitsFile = path.join(root, 'src', 'limits.ts');
    await fsp.appendFile(limitsFile, '// edited after the build\n');
    assert.deepEqual(distState(root), { current: false, reason: 'stale' });
    await fsp.rm(path.join(root, 'dist', STAMP_FILE));
    assert.deepEqual(distState(root), { current: false, reason: 'absent' });
  });
});
