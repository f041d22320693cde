// Checks the log format of a node: JSON lines when its output is piped (what supervisors and the
// tests read), readable pino-pretty lines with --log-format pretty and by default on a terminal
// (through script(1)), and a bad --log-format is one line on stderr with exit code 2; by running
// the real entry point and reading what it prints until "node started".
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { freePort, MAIN_ENTRY, waitFor } from '../helpers/node-process.ts';
import { runPeerkv, type Spawned, spawnPeerkv, TempDirs } from './node-support.ts';

const STARTED_TIMEOUT_MS = 20_000;
const dirs = new TempDirs();
const spawned: Spawned[] = [];
const run = promisify(execFile);

after(async () => {
  for (const child of spawned) child.killGroup();
  await Promise.allSettled(spawned.map((child) => child.waitExit(10_000)));
  await dirs.removeAll();
});

async function startNode(extra: string[]): Promise<string> {
  const dir = await dirs.make();
  const child = spawnPeerkv([
    'node',
    '--port',
    String(await freePort()),
    '--data-dir',
    dir,
    ...extra,
  ]);
  spawned.push(child);
  await waitFor(() => child.stdout.includes('node started'), {
    timeoutMs: STARTED_TIMEOUT_MS,
    message: `"node started" in the output (stderr: ${child.stderr})`,
  });
  child.killGroup();
  return child.stdout;
}

test('piped output is JSON lines by default', async () => {
  const lines = (await startNode([])).trimEnd().split('\n');
  for (const line of lines) {
    const entry = JSON.parse(line);
    assert.equal(typeof entry.level, 'number', line);
  }
  assert.ok(lines.some((line) => JSON.parse(line).msg === 'node started'));
});

test('--log-format pretty prints readable lines, without colour codes when piped', async () => {
  const output = await startNode(['--log-format', 'pretty']);
  assert.match(
    output,
    /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: node started \{.*"nodeId":"[0-9a-f]{16}"/m,
  );
  assert.ok(!output.includes('\u001b['), 'no colour codes');
  assert.throws(() => JSON.parse(output.split('\n')[0]!));
});

test('on a terminal the default is pretty', async (t) => {
  const hasScript = await run('script', ['--version']).then(
    () => true,
    () => false,
  );
  if (!hasScript) {
    t.skip('script(1) is not installed');
    return;
  }
  const port = await freePort();
  const dir = await dirs.make();
  // `timeout` is a backstop: the test stops script(1), which ends the session, once it has seen
  // the line.
  const command = `exec timeout 60 ${process.execPath} --import tsx ${MAIN_ENTRY} node --port ${port} --data-dir ${dir}`;
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const terminal = spawn('script', ['-qec', command, '/dev/null'], { env });
  let output = '';
  terminal.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  const closed = new Promise((resolve) => terminal.once('close', resolve));
  try {
    await waitFor(() => output.includes('node started'), {
      timeoutMs: STARTED_TIMEOUT_MS,
      message: '"node started" on the terminal',
    });
  } finally {
    terminal.kill('SIGTERM');
    await closed;
  }
  assert.match(output, /INFO.*node started/);
  assert.doesNotMatch(output, /"level":30/);
});

test('a bad --log-format is one line on stderr and exit code 2', async () => {
  const result = await runPeerkv([
    'node',
    '--port',
    String(await freePort()),
    '--log-format',
    'xml',
  ]);
  assert.equal(result.code, 2);
  assert.equal(result.stderr, 'peerkv: --log-format must be "json" or "pretty", got "xml"\n');
});
