// Checks that `peerkv/client` works as an installed package, not only inside this repo: `npm pack`
// (whose prepack builds dist/), the tarball installed offline into a fresh temp project from the
// local npm cache, then imported and used from plain JavaScript and from strictly type-checked
// TypeScript against a real node; a misuse must fail the type check.
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { PROJECT_ROOT, useOneNode } from '../helpers/node-process.ts';
import { runCommand, writeConsumerProject } from './client-package-support.ts';
import { VERSION_PATTERN } from './node-support.ts';

const PACK_TIMEOUT_MS = 120_000;
const INSTALL_TIMEOUT_MS = 120_000;
const RUN_TIMEOUT_MS = 60_000;
const FIXTURES = path.join(PROJECT_ROOT, 'test', 'fixtures', 'client-consumer');

const one = useOneNode();
let dir = '';

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'peerkv-consumer-'));
  const { stdout } = await runCommand('npm', ['pack', '--json', '--pack-destination', dir], {
    cwd: PROJECT_ROOT,
    timeoutMs: PACK_TIMEOUT_MS,
  });
  const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as { filename: string }[];
  assert.ok(packed, stdout);
  await writeConsumerProject(dir, packed.filename);
  for (const file of ['use.mjs', 'use.ts', 'wrong.ts', 'tsconfig.json']) {
    await fsp.copyFile(path.join(FIXTURES, file), path.join(dir, file));
  }
  // --offline: every tarball comes from the npm cache the repo's own install filled. Scripts are
  // skipped: the client needs none (better-sqlite3's native build is for running a node).
  await runCommand('npm', ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], {
    cwd: dir,
    timeoutMs: INSTALL_TIMEOUT_MS,
  }).catch((error: Error) => {
    if (/ENOTCACHED/.test(error.message)) {
      throw new Error(`a dependency is not in the npm cache: run "npm ci" first\n${error.message}`);
    }
    throw error;
  });
});

after(async () => {
  if (dir !== '' && process.env.PEERKV_KEEP_TEST_DIRS !== '1') {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('the tarball carries the built client with its declarations', async () => {
  const installed = path.join(dir, 'node_modules', 'peerkv');
  const manifest = JSON.parse(await fsp.readFile(path.join(installed, 'package.json'), 'utf8'));
  assert.deepEqual(manifest.exports['./client'], {
    types: './dist/src/client/index.d.ts',
    import: './dist/src/client/index.js',
  });
  for (const file of ['index.js', 'index.d.ts', 'client.js', 'errors.d.ts']) {
    await fsp.access(path.join(installed, 'dist', 'src', 'client', file));
  }
  await assert.rejects(fsp.access(path.join(installed, 'test')), 'tests are not published');
});

test('plain JavaScript imports peerkv/client and uses every call', async () => {
  const { stdout } = await runCommand(process.execPath, ['use.mjs'], {
    cwd: dir,
    timeoutMs: RUN_TIMEOUT_MS,
    env: { PEERKV_URL: one.url },
  });
  const seen = JSON.parse(stdout);
  assert.equal(seen.put.key, 'js/a');
  assert.match(seen.put.version, VERSION_PATTERN);
  assert.deepEqual(seen.got, {
    key: 'js/a',
    value: { from: 'js', n: 1 },
    version: seen.put.version,
  });
  assert.equal(seen.page.items.length, 1);
  assert.equal(seen.page.next, 'js/a');
  assert.deepEqual(seen.keys, ['js/a', 'js/b']);
  assert.equal(seen.deleted.existed, true);
  assert.equal(seen.missing, true);
  assert.deepEqual(seen.error, { code: 'KEY_TOO_LARGE', status: 400, typed: true });
  assert.match(seen.nodeId, /^[0-9a-f]{16}$/);
});

test('TypeScript type-checks against the published declarations and runs', async () => {
  // One strict run (lib check on) over use.ts, which must pass, and wrong.ts, which must not:
  // errors in wrong.ts prove the declarations are real types, not `any`. tsc still emits use.js.
  const tsc = path.join(dir, 'node_modules', 'typescript', 'bin', 'tsc');
  const failed = await runCommand(process.execPath, [tsc, '-p', '.'], {
    cwd: dir,
    timeoutMs: RUN_TIMEOUT_MS,
  }).then(
    () => undefined,
    (error: Error) => error.message,
  );
  assert.ok(failed !== undefined, 'wrong.ts type-checked, so the declarations are too loose');
  const files = [...failed.matchAll(/([\w./-]+)\(\d+,\d+\): error TS\d+/g)].map((m) => m[1]);
  assert.ok(files.length > 0, failed);
  assert.deepEqual(new Set(files), new Set(['wrong.ts']), `only wrong.ts fails: ${failed}`);
  assert.match(failed, /wrong\.ts\(5,\d+\): error TS2345/, 'a number is not a key');
  assert.match(failed, /wrong\.ts\(7,\d+\): error TS18048/, 'get() may return undefined');
  assert.match(failed, /wrong\.ts\(8,\d+\): error TS2322/, 'a prefix is a string');
  const { stdout } = await runCommand(process.execPath, ['out/use.js'], {
    cwd: dir,
    timeoutMs: RUN_TIMEOUT_MS,
    env: { PEERKV_URL: one.url },
  });
  const seen = JSON.parse(stdout);
  assert.match(seen.version, VERSION_PATTERN);
  assert.equal(seen.sum, 6);
  assert.equal(seen.items, 1);
  assert.equal(seen.code, 'CLIENT_BAD_ARGUMENT');
  assert.ok(seen.entries >= 1);
});
