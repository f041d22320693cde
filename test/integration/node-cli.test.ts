// Checks the `peerkv node` command line: each bad configuration prints one line on stderr (no stack
// trace) and exits 2, --help exits 0 with the flags, and both --port=N and --port N start a node;
// by running the real entry point as a child process and reading its exit code and output.
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePort, waitFor } from '../helpers/node-process.ts';
import {
  closeServer,
  type Finished,
  occupyPort,
  pingOk,
  portRefuses,
  runPeerkv,
  type Spawned,
  spawnPeerkv,
  TempDirs,
} from './node-support.ts';

const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
const CLI_CONCURRENCY = 4;

const dirs = new TempDirs();
const started: Spawned[] = [];

after(async () => {
  for (const spawned of started) spawned.killGroup();
  await Promise.allSettled(started.map((spawned) => spawned.waitExit(STOP_TIMEOUT_MS)));
  await dirs.removeAll();
});

/** Exit 2, nothing but one `peerkv: ...` line on stderr matching `mentions`, no stack trace. */
function assertConfigError(result: Finished, mentions: RegExp, what: string): void {
  const context = `${what}\nexit ${result.code} ${result.signal}\nstderr: ${result.stderr}\nstdout: ${result.stdout.slice(0, 500)}`;
  assert.equal(result.code, 2, context);
  assert.ok(result.stderr.endsWith('\n'), `one whole line: ${context}`);
  const lines = result.stderr.slice(0, -1).split('\n');
  assert.equal(lines.length, 1, `exactly one line: ${context}`);
  const [line = ''] = lines;
  assert.match(line, /^peerkv: \S/, context);
  assert.doesNotMatch(line, /\bat .+:\d+:\d+|Error:|node:internal/, `no stack trace: ${context}`);
  assert.match(line, mentions, `the line names what is wrong: ${context}`);
}

describe('bad configurations exit 2 with one line on stderr', {
  concurrency: CLI_CONCURRENCY,
}, () => {
  let dir = '';
  let port = 0;

  before(async () => {
    dir = await dirs.make();
    port = await freePort();
  });

  const cases: [what: string, args: () => string[], mentions: RegExp][] = [
    ['missing --port', () => ['--data-dir', path.join(dir, 'a')], /--port/],
    ['--port abc', () => ['--port', 'abc', '--data-dir', path.join(dir, 'a')], /--port.*abc/],
    ['--port 70000', () => ['--port', '70000', '--data-dir', path.join(dir, 'a')], /--port.*70000/],
    ['--port 0', () => ['--port', '0', '--data-dir', path.join(dir, 'a')], /--port/],
    ['--peers notaurl', () => ['--port', String(port), '--peers', 'notaurl'], /--peers.*notaurl/],
    ['--peers ftp://x', () => ['--port', String(port), '--peers', 'ftp://x'], /--peers.*ftp:\/\/x/],
    [
      '--peers with one bad URL among good ones',
      () => ['--port', String(port), '--peers', 'http://127.0.0.1:1,http//oops'],
      /--peers.*oops/,
    ],
    ['--pingfreq 0', () => ['--port', String(port), '--pingfreq', '0'], /--pingfreq.*0/],
    ['--pingfreq abc', () => ['--port', String(port), '--pingfreq', 'abc'], /--pingfreq.*abc/],
    ['--timeout -1', () => ['--port', String(port), '--timeout', '-1'], /--timeout/],
    ['--timeout=-1', () => ['--port', String(port), '--timeout=-1'], /--timeout.*-1/],
    ['unknown flag --bogus', () => ['--port', String(port), '--bogus'], /--bogus/],
    ['--sync maybe', () => ['--port', String(port), '--sync', 'maybe'], /--sync.*maybe/],
    [
      'an --auth-file that does not exist',
      () => ['--port', String(port), '--auth-file', path.join(dir, 'no-such-auth.json')],
      /--auth-file .*no-such-auth\.json/,
    ],
    [
      'a --tls-cert that does not exist',
      () => [
        '--port',
        String(port),
        '--tls-cert',
        path.join(dir, 'no-such-cert.pem'),
        '--tls-key',
        path.join(dir, 'no-such-key.pem'),
      ],
      /--tls-cert .*no-such-cert\.pem/,
    ],
  ];
  for (const [index, [what, args, mentions]] of cases.entries()) {
    test(what, async () => {
      // A bad configuration changes nothing: the data dir it names is not created (before the
      // fix, the default data/node-<port> was made in the working directory by most of these).
      const given = args();
      const dataDir = path.join(dir, `never-made-${index}`);
      const argv = given.includes('--data-dir') ? given : [...given, '--data-dir', dataDir];
      assertConfigError(await runPeerkv(['node', ...argv]), mentions, what);
      const named = argv[argv.indexOf('--data-dir') + 1] as string;
      await assert.rejects(fsp.stat(named), { code: 'ENOENT' }, `${what}: ${named} was created`);
    });
  }

  test('a data dir that cannot be created (under a regular file)', async () => {
    const file = path.join(dir, 'regular-file');
    await fsp.writeFile(file, 'not a directory');
    const result = await runPeerkv([
      'node',
      '--port',
      String(port),
      '--data-dir',
      path.join(file, 'sub'),
    ]);
    assertConfigError(result, /--data-dir/, 'data dir under a file');
  });

  test('a port already in use', async () => {
    const busy = await freePort();
    const server = await occupyPort(busy);
    try {
      const result = await runPeerkv([
        'node',
        '--port',
        String(busy),
        '--data-dir',
        path.join(dir, 'busy'),
      ]);
      assertConfigError(result, new RegExp(`--port ${busy}.*in use`), 'port in use');
    } finally {
      await closeServer(server);
    }
  });
});

describe('the command line that works', () => {
  test('--help exits 0 and prints every flag', async () => {
    const result = await runPeerkv(['node', '--help']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    for (const flag of [
      '--port',
      '--peers',
      '--data-dir',
      '--pingfreq',
      '--timeout',
      '--host',
      '--sync',
      '--max-value-bytes',
      '--help',
    ]) {
      assert.ok(result.stdout.includes(flag), `--help names ${flag}:\n${result.stdout}`);
    }
  });

  for (const form of ['--port=N', '--port N'] as const) {
    test(`${form} (and the same form for the other flags) starts a node; SIGTERM exits 0`, async () => {
      const dir = await dirs.make();
      const port = await freePort();
      const dataDir = path.join(dir, 'data');
      const flags: [string, string][] = [
        ['--port', String(port)],
        ['--data-dir', dataDir],
        ['--peers', `http://127.0.0.1:${port}`],
        ['--pingfreq', '0.5'],
        ['--timeout', '1'],
      ];
      const args = flags.flatMap(([name, value]) =>
        form === '--port=N' ? [`${name}=${value}`] : [name, value],
      );
      const node = spawnPeerkv(['node', ...args]);
      started.push(node);
      const url = `http://127.0.0.1:${port}`;
      await waitFor(() => pingOk(url), {
        timeoutMs: READY_TIMEOUT_MS,
        message: `${form} node ready`,
      });
      await fsp.access(path.join(dataDir, 'peerkv.db'));
      node.child.kill('SIGTERM');
      const exit = await node.waitExit(STOP_TIMEOUT_MS);
      assert.equal(exit.code, 0, exit.stderr);
      assert.equal(exit.signal, null);
      assert.ok(await portRefuses(port), 'the port is released');
    });
  }
});
