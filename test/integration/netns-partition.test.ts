// Goal: nodes converge after a real network partition; method: three peerkv nodes run as separate
// hosts, each in a network namespace of its own joined by veth pairs to a bridge the test creates
// (addresses in 10.231.77.0/24 exist only inside those namespaces), one host's link is taken down,
// both sides take writes, the link comes back up, and all three must reach the same /store/hash
// holding every write (last writer wins where both sides wrote the same key).
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { MAIN_ENTRY, PROJECT_ROOT, waitFor } from '../helpers/node-process.ts';

const execFileAsync = promisify(execFile);

/** Unique per test process: interface names stay under Linux's 15 characters. */
const TAG = `pk${process.pid.toString(36)}`;
const BRIDGE = `${TAG}br`;
const SUBNET = '10.231.77';
const PORT = 8001;
const PINGFREQ_SECONDS = 0.2;
const TIMEOUT_SECONDS = 1;
const COMMAND_TIMEOUT_MS = 10_000;
const CURL_TIMEOUT_SECONDS = 3;
const READY_TIMEOUT_MS = 40_000;
const STATE_TIMEOUT_MS = 15_000;
const CONVERGE_TIMEOUT_MS = 30_000;
const KILL_WAIT_MS = 5_000;
const LOG_TAIL_LINES = 25;

interface Host {
  readonly index: number;
  readonly ns: string;
  /** The veth end on the bridge, in the root namespace: taking it down cuts the host off. */
  readonly hostVeth: string;
  readonly nsVeth: string;
  readonly address: string;
  readonly url: string;
}

const HOSTS: readonly Host[] = [0, 1, 2].map((index) => ({
  index,
  ns: `${TAG}-ns${index}`,
  hostVeth: `${TAG}h${index}`,
  nsVeth: `${TAG}n${index}`,
  address: `${SUBNET}.${index + 1}`,
  url: `http://${SUBNET}.${index + 1}:${PORT}`,
}));

async function ip(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('ip', args, { timeout: COMMAND_TIMEOUT_MS });
  return stdout;
}

/** Why this machine cannot run the test, or undefined when it can. */
async function skipReason(): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root';
  const probe = `${TAG}-probe`;
  try {
    await ip('netns', 'add', probe);
  } catch (error) {
    return `"ip netns add" failed: ${error instanceof Error ? error.message.trim() : String(error)}`;
  }
  await ip('netns', 'del', probe);
  try {
    await execFileAsync('curl', ['--version'], { timeout: COMMAND_TIMEOUT_MS });
  } catch {
    // No curl: there is no way into the namespaces' network from this process.
    return 'curl is not installed';
  }
  return undefined;
}

interface Answer {
  status: number;
  text: string;
  body: unknown;
}

/** One HTTP request made from inside `host`'s namespace (curl), to that host's node. */
async function hostHttp(
  host: Host,
  method: string,
  target: string,
  json?: unknown,
): Promise<Answer> {
  const args = ['netns', 'exec', host.ns, 'curl', '-sS', '-m', String(CURL_TIMEOUT_SECONDS)];
  args.push('-X', method, '-o', '-', '-w', '\n%{http_code}');
  if (json !== undefined) {
    args.push('-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(json));
  }
  args.push(`${host.url}${target}`);
  const { stdout } = await execFileAsync('ip', args, {
    timeout: COMMAND_TIMEOUT_MS,
    maxBuffer: 16 * 1024 * 1024,
  });
  const cut = stdout.lastIndexOf('\n');
  const text = stdout.slice(0, cut);
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: keep the text, which the failing assertion shows.
  }
  return { status: Number(stdout.slice(cut + 1)), text, body };
}

/** Every acknowledged write by key, keeping the highest version (README: versions sort as strings). */
class Ledger {
  readonly #latest = new Map<string, { value: unknown; version: string }>();

  record(key: string, value: unknown, answer: Answer): void {
    assert.equal(answer.status, 200, `write ${key}: ${answer.text}`);
    const { version } = answer.body as { version: string };
    const known = this.#latest.get(key);
    if (!known || version > known.version) this.#latest.set(key, { value, version });
  }

  /** Live key -> value once everything is merged (a deleted key is absent). */
  expected(): Map<string, unknown> {
    const live = new Map<string, unknown>();
    for (const [key, { value }] of this.#latest) if (value !== undefined) live.set(key, value);
    return live;
  }
}

describe('a partition between network namespaces heals to one state', () => {
  let reason: string | undefined;
  let dir = '';
  const namespaces: string[] = [];
  const links: string[] = [];
  const nodes: ChildProcess[] = [];
  const ledger = new Ledger();

  async function put(host: Host, key: string, value: unknown): Promise<void> {
    const answer = await hostHttp(host, 'PUT', `/kv/${encodeURIComponent(key)}`, value);
    ledger.record(key, value, answer);
  }

  async function remove(host: Host, key: string): Promise<void> {
    ledger.record(key, undefined, await hostHttp(host, 'DELETE', `/kv/${encodeURIComponent(key)}`));
  }

  async function hash(host: Host): Promise<string> {
    const answer = await hostHttp(host, 'GET', '/store/hash');
    assert.equal(answer.status, 200, answer.text);
    return (answer.body as { hash: string }).hash;
  }

  async function content(host: Host): Promise<Map<string, unknown>> {
    const answer = await hostHttp(host, 'GET', '/kv?limit=1000');
    assert.equal(answer.status, 200, answer.text);
    const items = (answer.body as { items: { key: string; value: unknown }[] }).items;
    return new Map(items.map((item) => [item.key, item.value]));
  }

  /** True once `host` sees each of `peers` in `state` in its /cluster. */
  async function sees(host: Host, peers: readonly Host[], state: 'up' | 'down'): Promise<boolean> {
    const answer = await hostHttp(host, 'GET', '/cluster');
    const listed = (answer.body as { peers?: { url: string; state: string }[] }).peers ?? [];
    return peers.every((peer) => listed.some((p) => p.url === peer.url && p.state === state));
  }

  function logTails(): string {
    return HOSTS.map((host) => {
      const file = path.join(dir, `node-${host.index}.log`);
      const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n') : [];
      return `--- ${host.ns} (${host.url}) ---\n${lines.slice(-LOG_TAIL_LINES).join('\n')}`;
    }).join('\n');
  }

  async function withLogs<T>(what: Promise<T>): Promise<T> {
    try {
      return await what;
    } catch (error) {
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${logTails()}`, {
        cause: error,
      });
    }
  }

  async function buildNetwork(): Promise<void> {
    await ip('link', 'add', BRIDGE, 'type', 'bridge');
    links.push(BRIDGE);
    await ip('link', 'set', BRIDGE, 'up');
    for (const host of HOSTS) {
      await ip('netns', 'add', host.ns);
      namespaces.push(host.ns);
      await ip('link', 'add', host.hostVeth, 'type', 'veth', 'peer', 'name', host.nsVeth);
      links.push(host.hostVeth);
      await ip('link', 'set', host.nsVeth, 'netns', host.ns);
      await ip('link', 'set', host.hostVeth, 'master', BRIDGE, 'up');
      await ip('-n', host.ns, 'addr', 'add', `${host.address}/24`, 'dev', host.nsVeth);
      await ip('-n', host.ns, 'link', 'set', host.nsVeth, 'up');
      await ip('-n', host.ns, 'link', 'set', 'lo', 'up');
    }
  }

  function startNode(host: Host): ChildProcess {
    const dataDir = path.join(dir, `node-${host.index}`);
    const peers = HOSTS.map((peer) => peer.url).join(',');
    const logFd = fs.openSync(path.join(dir, `node-${host.index}.log`), 'a');
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    try {
      // `ip netns exec` execs node in place, so the pid is the node's; `detached` gives it a
      // process group of its own, which after() kills by that pid.
      const child = spawn(
        'ip',
        ['netns', 'exec', host.ns, process.execPath, '--import', 'tsx', MAIN_ENTRY, 'node']
          .concat(['--host', host.address, '--port', String(PORT), '--peers', peers])
          .concat(['--pingfreq', String(PINGFREQ_SECONDS), '--timeout', String(TIMEOUT_SECONDS)])
          .concat(['--data-dir', dataDir]),
        { cwd: PROJECT_ROOT, env, stdio: ['ignore', logFd, logFd], detached: true },
      );
      child.on('error', (error) => {
        // The spawn itself failed: say so in the node's log, which a failing wait prints.
        fs.appendFileSync(
          path.join(dir, `node-${host.index}.log`),
          `spawn failed: ${error.message}\n`,
        );
      });
      child.unref();
      return child;
    } finally {
      fs.closeSync(logFd);
    }
  }

  before(async () => {
    reason = await skipReason();
    if (reason !== undefined) return;
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'peerkv-netns-'));
    await buildNetwork();
    for (const host of HOSTS) nodes.push(startNode(host));
  });

  after(async () => {
    const failures: string[] = [];
    await Promise.all(nodes.map((child) => killGroup(child, failures)));
    for (const ns of namespaces.reverse()) await ipCleanup(failures, 'netns', 'del', ns);
    // Deleting a namespace deletes its veth ends and their peers; what is left goes here.
    for (const link of links.reverse()) await ipCleanup(failures, 'link', 'del', link);
    if (dir !== '' && process.env.PEERKV_KEEP_TEST_DIRS !== '1') {
      await fsp.rm(dir, { recursive: true, force: true, maxRetries: 3 });
    }
    assert.deepEqual(failures, [], 'cleanup failed');
  });

  test('writes on both sides of a cut link all arrive once it heals', async (t) => {
    if (reason !== undefined) {
      t.skip(`skipped: ${reason}`);
      return;
    }
    const [a, b, c] = HOSTS as [Host, Host, Host];
    await withLogs(
      waitFor(
        async () => {
          for (const host of HOSTS)
            if ((await hostHttp(host, 'GET', '/ping')).status !== 200) return false;
          return true;
        },
        { timeoutMs: READY_TIMEOUT_MS, intervalMs: 200, message: 'all three nodes answer /ping' },
      ),
    );
    await withLogs(
      waitFor(
        async () =>
          (await sees(a, [b, c], 'up')) &&
          (await sees(b, [a, c], 'up')) &&
          (await sees(c, [a, b], 'up')),
        {
          timeoutMs: STATE_TIMEOUT_MS,
          intervalMs: 200,
          message: 'every node sees both peers up across the bridge',
        },
      ),
    );

    for (let i = 0; i < 5; i += 1) await put(a, `before-${i}`, { i, phase: 'before' });
    await withLogs(converged('before the cut'));

    await ip('link', 'set', c.hostVeth, 'down');
    await withLogs(
      waitFor(async () => (await sees(a, [c], 'down')) && (await sees(c, [a, b], 'down')), {
        timeoutMs: STATE_TIMEOUT_MS,
        intervalMs: 200,
        message: 'the cut is seen on both sides',
      }),
    );
    for (let i = 0; i < 10; i += 1) await put(a, `majority-${i}`, { i, side: 'a' });
    for (let i = 10; i < 15; i += 1) await put(b, `majority-${i}`, { i, side: 'b' });
    for (let i = 0; i < 10; i += 1) await put(c, `minority-${i}`, { i, side: 'c' });
    await put(a, 'contested', 'majority wrote first');
    await put(c, 'contested', 'minority wrote last');
    await put(a, 'before-2', 'updated by the majority');
    await remove(c, 'before-1');
    await remove(a, 'before-3');
    await put(c, 'before-3', 'rewritten by the minority after the delete');

    // The majority side replicates within itself while the cut keeps the minority apart.
    await withLogs(
      waitFor(async () => (await hostHttp(b, 'GET', '/kv/majority-9')).status === 200, {
        timeoutMs: STATE_TIMEOUT_MS,
        message: 'majority-9 reaches b',
      }),
    );
    assert.equal(
      (await hostHttp(c, 'GET', '/kv/majority-0')).status,
      404,
      'the cut let a write through',
    );
    assert.equal(
      (await hostHttp(a, 'GET', '/kv/minority-0')).status,
      404,
      'the cut let a write through',
    );

    await ip('link', 'set', c.hostVeth, 'up');
    const healedAt = performance.now();
    await withLogs(converged('after the heal'));
    t.diagnostic(
      `converged ${Math.round(performance.now() - healedAt)} ms after the link came back`,
    );

    const expected = ledger.expected();
    assert.equal(expected.get('contested'), 'minority wrote last');
    assert.equal(expected.has('before-1'), false);
    for (const host of HOSTS) {
      assert.deepEqual(await content(host), expected, `${host.ns} holds other content`);
    }
  });

  /** Waits until all three hashes agree and every node holds exactly the ledger's content. */
  function converged(when: string): Promise<true> {
    const expected = ledger.expected();
    return waitFor(
      async () => {
        const hashes = await Promise.all(HOSTS.map(hash));
        if (new Set(hashes).size !== 1) return false;
        for (const host of HOSTS) {
          const held = await content(host);
          if (held.size !== expected.size) return false;
          for (const [key, value] of expected) {
            if (JSON.stringify(held.get(key)) !== JSON.stringify(value)) return false;
          }
        }
        return true;
      },
      { timeoutMs: CONVERGE_TIMEOUT_MS, intervalMs: 250, message: `convergence ${when}` },
    );
  }
});

/** SIGKILLs the child's process group and waits for the child to exit. */
async function killGroup(child: ChildProcess, failures: string[]): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch (error) {
    // ESRCH: the group is already gone, which is all this wants.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') failures.push(String(error));
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      failures.push(`pid ${child.pid} did not exit within ${KILL_WAIT_MS} ms`);
      resolve();
    }, KILL_WAIT_MS);
  });
  await Promise.race([exited, late]);
  clearTimeout(timer);
}

/** Runs an `ip` cleanup step; a thing already gone is fine, any other error is recorded. */
async function ipCleanup(failures: string[], ...args: string[]): Promise<void> {
  try {
    await ip(...args);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (!/Cannot find device|No such file|does not exist/i.test(message)) {
      failures.push(`ip ${args.join(' ')}: ${message.trim()}`);
    }
  }
}
