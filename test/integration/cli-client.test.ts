// Checks the client commands of the real `peerkv` bin against a real 2-node cluster: get, put
// (JSON or string, stdin), del, ls, status (exit 1 once a node is killed), load then dump round
// trips exactly, errors are one line with a non-zero exit, --help per command, --node failover,
// and the progress bar shows on a terminal (through script(1)) and never when piped.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Cluster, freePort, useCluster, waitFor } from '../helpers/node-process.ts';
import { BIN, oneLineError, runBin } from './cli-client-support.ts';
import { VERSION_PATTERN } from './node-support.ts';

const ROUND_TRIP_ENTRIES = 100_000;
const BULK_TIMEOUT_MS = 240_000;
const CONVERGE_TIMEOUT_MS = 15_000;

let cluster: Cluster;
useCluster({ nodes: 2 }, (started) => {
  cluster = started;
});
let dir = '';
before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'peerkv-cli-'));
});
after(async () => {
  if (dir !== '') await fsp.rm(dir, { recursive: true, force: true });
});

const node = (index = 0) => ['--node', cluster.urls[index]!];

describe('single keys', () => {
  test('put, get, del with human and --json output', async () => {
    const put = await runBin(['put', 'cli/a', 'hello world', ...node()]);
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stdout, /^OK cli\/a [0-9a-f]{14}-[0-9a-f]{16}\n$/);
    const got = await runBin(['get', 'cli/a', ...node()]);
    assert.deepEqual([got.code, got.stdout], [0, 'hello world\n']);

    const json = await runBin(['put', 'cli/b', '{"n":[1,2]}', '--json', ...node()]);
    const written = JSON.parse(json.stdout);
    assert.match(written.version, VERSION_PATTERN);
    const entry = JSON.parse((await runBin(['get', 'cli/b', '--json', ...node()])).stdout);
    assert.deepEqual(entry, { key: 'cli/b', value: { n: [1, 2] }, version: written.version });

    const deleted = await runBin(['del', 'cli/a', '--json', ...node()]);
    assert.equal(JSON.parse(deleted.stdout).existed, true);
    const missing = await runBin(['get', 'cli/a', ...node()]);
    assert.equal(missing.code, 1);
    assert.match(oneLineError(missing), /not found/);
  });

  test('values: JSON when it parses, else a string; - reads stdin; negative numbers', async () => {
    const cases: [args: string[], input: string | undefined, value: unknown][] = [
      [['42'], undefined, 42],
      [['-7'], undefined, -7],
      [['"quoted"'], undefined, 'quoted'],
      [['not json'], undefined, 'not json'],
      [['-'], '{"from":"stdin"}\n', { from: 'stdin' }],
      [['-'], 'line one\nline two\n', 'line one\nline two'],
    ];
    for (const [index, [value, input]] of cases.entries()) {
      const put = await runBin(['put', `cli/value/${index}`, ...value, ...node()], { input });
      assert.equal(put.code, 0, put.stderr);
    }
    const listed = await runBin(['ls', '--prefix', 'cli/value/', '--json', ...node()]);
    const values = JSON.parse(listed.stdout).items.map((item: { value: unknown }) => item.value);
    assert.deepEqual(
      values,
      cases.map(([, , expected]) => expected),
    );
  });
});

describe('listing', () => {
  before(async () => {
    for (const key of ['ls/a', 'ls/b', 'ls/c', 'other']) {
      assert.equal((await runBin(['put', key, `"${key}"`, ...node()])).code, 0);
    }
  });

  test('ls with --prefix and --limit, as a table and as --json', async () => {
    const human = await runBin(['ls', '--prefix', 'ls/', ...node()]);
    assert.equal(human.code, 0, human.stderr);
    assert.deepEqual(human.stdout.trimEnd().split('\n'), [
      'KEY   VALUE',
      'ls/a  "ls/a"',
      'ls/b  "ls/b"',
      'ls/c  "ls/c"',
    ]);
    const page = await runBin(['ls', '--prefix', 'ls/', '--limit', '2', '--json', ...node()]);
    const listed = JSON.parse(page.stdout);
    assert.deepEqual(
      listed.items.map((item: { key: string }) => item.key),
      ['ls/a', 'ls/b'],
    );
    assert.equal(listed.next, 'ls/b');
  });
});

describe('errors and help', () => {
  test('usage mistakes exit 2 with one line; an unreachable node exits 1 with one line', async () => {
    const usage: string[][] = [
      ['get'],
      ['put', 'only-key'],
      ['get', 'k', '--bogus'],
      ['ls', '--limit', 'zero'],
      ['get', 'k', '--node', 'not a url'],
      ['get', 'k', '--ca', path.join(dir, 'missing.pem')],
      ['load', path.join(dir, 'missing.jsonl')],
    ];
    for (const args of usage) {
      const result = await runBin(args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(oneLineError(result), /^peerkv: /);
    }
    const port = await freePort();
    const down = await runBin(['get', 'k', '--node', `http://127.0.0.1:${port}`, '--timeout', '2']);
    assert.equal(down.code, 1);
    assert.match(oneLineError(down), /^peerkv get: .*CLIENT_UNAVAILABLE/);
    const tooLong = await runBin(['put', 'k'.repeat(2_000), 'v', ...node()]);
    assert.equal(tooLong.code, 1);
    assert.match(oneLineError(tooLong), /KEY_TOO_LARGE, HTTP 400/);
  });

  test('peerkv --help lists every command; each command has its own --help', async () => {
    const top = await runBin(['--help']);
    assert.equal(top.code, 0);
    for (const command of ['get', 'put', 'del', 'ls', 'status', 'load', 'dump']) {
      assert.match(top.stdout, new RegExp(`peerkv ${command}\\b`));
      const help = await runBin([command, '--help']);
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, new RegExp(`^Usage: peerkv ${command}`));
      assert.match(help.stdout, /--node <url>/);
    }
  });

  test('--node repeats: a dead first node fails over to the next', async () => {
    const port = await freePort();
    const result = await runBin([
      'put',
      'cli/failover',
      '1',
      '--node',
      `http://127.0.0.1:${port}`,
      ...node(1),
    ]);
    assert.equal(result.code, 0, result.stderr);
  });
});

describe('bulk', () => {
  test(`load then dump of ${ROUND_TRIP_ENTRIES.toLocaleString('en-US')} entries round-trips exactly`, async () => {
    const expected = new Map<string, unknown>();
    const lines: string[] = [];
    for (let i = 0; i < ROUND_TRIP_ENTRIES; i += 1) {
      const key = `bulk/${String(i).padStart(6, '0')}${i % 7 === 0 ? '/é€😀' : ''}`;
      const value = i % 3 === 0 ? { n: i, s: 'x'.repeat(i % 40) } : i % 3 === 1 ? `v${i}` : i * 1.5;
      expected.set(key, value);
      lines.push(JSON.stringify({ key, value }));
    }
    // A key written twice: the later line wins.
    lines.push(JSON.stringify({ key: 'bulk/000001', value: 'again' }));
    expected.set('bulk/000001', 'again');
    const file = path.join(dir, 'in.jsonl');
    await fsp.writeFile(file, `${lines.join('\n')}\n`);
    // A generous deadline: the whole suite runs beside this on two cores.
    const slow = ['--timeout', '120'];
    const loaded = await runBin(['load', file, '--json', ...slow, ...node()], {
      timeoutMs: BULK_TIMEOUT_MS,
    });
    assert.equal(loaded.code, 0, loaded.stderr);
    assert.equal(JSON.parse(loaded.stdout).written, lines.length);
    assert.equal(loaded.stderr, '', 'no progress bar when piped');

    const dumped = await runBin(['dump', '--prefix', 'bulk/', ...slow, ...node()], {
      timeoutMs: BULK_TIMEOUT_MS,
    });
    assert.equal(dumped.code, 0, dumped.stderr);
    assert.equal(dumped.stderr, '', 'no progress bar when piped');
    const entries = dumped.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.equal(entries.length, expected.size);
    const keys = entries.map((entry: { key: string }) => entry.key);
    const byteOrder = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    assert.deepEqual(keys, byteOrder, 'dump is in key byte order');
    for (const entry of entries) {
      assert.deepEqual(entry.value, expected.get(entry.key), entry.key);
      assert.match(entry.version, VERSION_PATTERN);
    }
  });

  test('a bad line stops load before any write and names the line', async () => {
    const file = path.join(dir, 'bad.jsonl');
    await fsp.writeFile(file, '{"key":"bad/1","value":1}\n\n{"key":"bad/2"}\n');
    const result = await runBin(['load', file, ...node()]);
    assert.equal(result.code, 2);
    assert.match(oneLineError(result), /bad\.jsonl:3: "value" is missing/);
    assert.equal((await runBin(['get', 'bad/1', ...node()])).code, 1, 'nothing was written');
  });

  test('on a terminal, load and dump draw a progress bar', {
    skip: !hasScript() && 'script(1) is not installed',
  }, async () => {
    const file = path.join(dir, 'tty.jsonl');
    const lines = Array.from({ length: 50 }, (_, i) =>
      JSON.stringify({ key: `tty/${i}`, value: i }),
    );
    await fsp.writeFile(file, `${lines.join('\n')}\n`);
    const command = [process.execPath, BIN, 'load', file, ...node()].map(shellQuote).join(' ');
    const output = execFileSync('script', ['-qec', command, '/dev/null'], {
      encoding: 'utf8',
      timeout: BULK_TIMEOUT_MS,
      env: { ...process.env, NODE_TEST_CONTEXT: '' },
    });
    assert.match(output, /\rload \[#+\] 100% 50\/50/);
    assert.match(output, /loaded 50 entries/);
  });
});

describe('status', () => {
  test('a healthy cluster: every node up, hashes agree, exit 0', async () => {
    const result = await waitFor(
      async () => {
        const run = await runBin(['status', ...node()]);
        return run.code === 0 && run;
      },
      { timeoutMs: CONVERGE_TIMEOUT_MS, message: 'status exits 0' },
    );
    const lines = result.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^NODE\s+ID\s+STATE\s+KEYS\s+HASH\s+PENDING\s+LAG P99\s+LAST RESYNC$/);
    for (const url of cluster.urls)
      assert.ok(
        lines.some((line) => line.startsWith(url) && /\bup\b/.test(line)),
        url,
      );
    assert.equal(lines.at(-1), '2 node(s), all up, hashes agree');
    const json = JSON.parse((await runBin(['status', '--json', ...node()])).stdout);
    assert.equal(json.healthy, true);
    assert.equal(json.nodes.length, 2);
  });

  test('a killed node: shown down, exit 1', async () => {
    cluster.node(1).kill('SIGKILL');
    await cluster.node(1).waitExit();
    const result = await waitFor(
      async () => {
        const run = await runBin(['status', ...node()]);
        return run.code === 1 && /\bdown\b/.test(run.stdout) && run;
      },
      { timeoutMs: CONVERGE_TIMEOUT_MS, message: 'status shows the node down' },
    );
    assert.match(result.stdout, /1 not up/);
  });
});

function hasScript(): boolean {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function shellQuote(arg: string): string {
  return `'${arg.replaceAll("'", "'\\''")}'`;
}
