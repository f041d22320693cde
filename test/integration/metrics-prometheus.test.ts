// Checks /metrics on a real 3-node cluster (cluster secret and client tokens on): the route needs an
// admin token, the text passes the real `promtool check metrics`, it carries the metrics operators
// need, and a real Prometheus server started by the test scrapes all three nodes with a bearer
// token (`up == 1` for each, a replication metric present). Skips, saying why, only where the
// Debian `prometheus` package (promtool, prometheus) is not installed.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { getJson, httpRequest, postJson } from '../helpers/http.ts';
import { type Cluster, freePort, startCluster, waitFor } from '../helpers/node-process.ts';
import { bearer, useSecretDir, writeAuthFile, writeSecretFile } from './security-support.ts';

const PROMETHEUS_READY_MS = 30_000;
const SCRAPE_WAIT_MS = 30_000;

function hasCommand(name: string): boolean {
  return spawnSync(name, ['--version'], { stdio: 'ignore' }).status === 0;
}

const promtoolMissing = hasCommand('promtool')
  ? false
  : 'promtool not installed (Debian package "prometheus"; .ci/run installs it)';
const prometheusMissing = hasCommand('prometheus')
  ? false
  : 'prometheus not installed (Debian package "prometheus"; .ci/run installs it)';

const secretDir = useSecretDir();
const authFile = path.join(secretDir(), 'auth.json');
const secretFile = path.join(secretDir(), 'secret');
const tokenFile = path.join(secretDir(), 'scrape-token');
const tokens = writeAuthFile(authFile, [
  { name: 'prometheus', permissions: ['admin'] },
  { name: 'app', permissions: ['read', 'write'] },
]);
writeSecretFile(secretFile);
fs.writeFileSync(tokenFile, tokens.prometheus!, { mode: 0o600 });
const admin = bearer(tokens.prometheus!);

const EXPECTED = [
  'peerkv_http_request_duration_seconds_bucket',
  'peerkv_rejected_requests_total',
  'peerkv_commit_mutations_bucket',
  'peerkv_commit_duration_seconds_bucket',
  'peerkv_keys',
  'peerkv_tombstones',
  'peerkv_database_bytes',
  'peerkv_peer_up',
  'peerkv_peer_clock_offset_seconds',
  'peerkv_peer_pending_changes',
  'peerkv_peer_oldest_pending_age_seconds',
  'peerkv_replication_lag_seconds_bucket',
  'peerkv_replication_sent_entries_total',
  'peerkv_replication_sent_bytes_total',
  'peerkv_replication_failures_total',
  // Resyncs by trigger and result, with entries, bytes and duration: exported from the start.
  'peerkv_resyncs_total',
  'peerkv_resync_entries_total',
  'peerkv_resync_bytes_total',
  'peerkv_resync_duration_seconds_bucket',
  'peerkv_pool_queued_tasks',
  'peerkv_pool_task_duration_seconds_bucket',
  'nodejs_eventloop_lag_seconds',
  'peerkv_ready',
];

describe('Prometheus metrics of a 3-node cluster', () => {
  let cluster: Cluster;
  let metricsText = '';

  before(async () => {
    cluster = await startCluster({
      extraArgs: ['--cluster-secret-file', secretFile, '--auth-file', authFile],
    });
    // Ready means the start-up count of the store is done: until then peerkv_keys reads 0.
    for (const node of cluster.nodes) {
      await waitFor(async () => (await getJson(`${node.url}/readyz`)).status === 200, {
        timeoutMs: 30_000,
        message: `${node.name} ready`,
      });
    }
    const app = bearer(tokens.app!);
    for (let i = 0; i < 20; i += 1) {
      const answer = await postJson(
        `${cluster.node(0).url}/store`,
        { key: `k${i}`, value: i },
        { headers: app },
      );
      assert.equal(answer.status, 200, answer.text);
    }
    await postJson(
      `${cluster.node(0).url}/store`,
      { key: 'x'.repeat(2000), value: 1 },
      { headers: app },
    );
    await getJson(`${cluster.node(0).url}/kv/k1`);
    await httpRequest('POST', `${cluster.node(0).url}/store`, { rawBody: '{bad', headers: app });
    await waitFor(
      async () => {
        const answer = await getJson(`${cluster.node(0).url}/metrics`, { headers: admin });
        metricsText = answer.text;
        return /^peerkv_replication_sent_entries_total\{peer="[^"]+"\} 2\d$/m.test(answer.text);
      },
      { timeoutMs: 15_000, message: 'node 0 reports its 20+ entries replicated' },
    );
  });
  after(() => cluster?.cleanup());

  test('/metrics needs an admin token', async () => {
    assert.equal((await getJson(`${cluster.node(0).url}/metrics`)).status, 401);
    const app = await getJson(`${cluster.node(0).url}/metrics`, { headers: bearer(tokens.app!) });
    assert.equal(app.status, 403);
  });

  test('the text carries the metrics operators need, in base units', () => {
    for (const name of EXPECTED) {
      assert.match(metricsText, new RegExp(`^${name}[{ ]`, 'm'), `missing ${name}`);
    }
    assert.match(metricsText, /^peerkv_keys 20$/m);
    for (const trigger of ['new-peer', 'recovered', 'anti-entropy', 'refused']) {
      for (const result of ['equal', 'synced', 'deferred', 'failed']) {
        assert.match(
          metricsText,
          new RegExp(
            `^peerkv_resyncs_total\\{trigger="${trigger}",result="${result}"\\} \\d+$`,
            'm',
          ),
          `peerkv_resyncs_total ${trigger} ${result}`,
        );
      }
    }
    assert.match(metricsText, /^peerkv_tombstones 0$/m);
    assert.match(metricsText, /^peerkv_rejected_requests_total\{reason="auth"\} [1-9]/m);
    assert.match(metricsText, /^peerkv_rejected_requests_total\{reason="invalid"\} [1-9]/m);
    assert.match(metricsText, /^peerkv_rejected_requests_total\{reason="limits"\} [1-9]/m);
    assert.match(metricsText, /^peerkv_peer_up\{peer="http:\/\/127\.0\.0\.1:\d+"\} 1$/m);
    assert.match(
      metricsText,
      /^peerkv_http_request_duration_seconds_count\{route="\/store",method="POST",status="200"\} 2\d$/m,
    );
    assert.ok(!metricsText.includes(tokens.prometheus!) && !metricsText.includes(tokens.app!));
  });

  test('point reads count the cache: a key read again is a hit', async () => {
    const hits = (text: string): number => {
      const line = /^peerkv_read_cache_lookups_total\{result="hit"\} (\d+)$/m.exec(text);
      assert.ok(line, 'peerkv_read_cache_lookups_total{result="hit"} is exported');
      return Number(line[1]);
    };
    const node = cluster.node(1).url;
    const before = hits((await getJson(`${node}/metrics`, { headers: admin })).text);
    const app = bearer(tokens.app!);
    for (let i = 0; i < 3; i += 1) {
      const read = await getJson(`${node}/kv/k7`, { headers: app });
      assert.equal(read.status, 200, read.text);
    }
    const text = (await getJson(`${node}/metrics`, { headers: admin })).text;
    assert.ok(hits(text) - before >= 2, `the second and third reads are hits (${before} before)`);
    assert.match(text, /^peerkv_read_cache_lookups_total\{result="miss"\} [1-9]/m);
  });

  test('WAL checkpoints run after writes: the first in the pool, a few changes on the node', async () => {
    let text = '';
    await waitFor(
      async () => {
        text = (await getJson(`${cluster.node(0).url}/metrics`, { headers: admin })).text;
        return /^peerkv_wal_checkpoint_duration_seconds_count\{thread="pool"\} [1-9]/m.test(text);
      },
      { timeoutMs: 10_000, message: 'node 0 checkpointed in the pool' },
    );
    // The checkpointer's rule (src/store/checkpointer.ts): after a checkpoint that copied
    // everything, a few changed rows are copied on the node's own connection.
    assert.match(text, /^peerkv_wal_checkpoint_duration_seconds_count\{thread="node"\} \d+$/m);
    assert.match(text, /^peerkv_wal_frames \d+$/m);
    assert.match(text, /^peerkv_pool_task_duration_seconds_count\{task="checkpoint"\} [1-9]/m);
  });

  test('promtool check metrics accepts the text', { skip: promtoolMissing }, () => {
    const check = spawnSync('promtool', ['check', 'metrics'], {
      input: metricsText,
      encoding: 'utf8',
    });
    assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
  });

  test('a real Prometheus server scrapes all three nodes', {
    skip: prometheusMissing,
  }, async () => {
    const port = await freePort();
    const dir = path.join(cluster.dir, 'prometheus');
    fs.mkdirSync(dir);
    const targets = cluster.ports.map((p) => `'127.0.0.1:${p}'`).join(', ');
    fs.writeFileSync(
      path.join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: peerkv\n    authorization:\n      type: Bearer\n      credentials_file: ${tokenFile}\n    static_configs:\n      - targets: [${targets}]\n`,
    );
    const server = startPrometheus(dir, port);
    try {
      const query = async (expression: string) => {
        const url = `http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(expression)}`;
        const answer = await getJson(url, { timeoutMs: 2_000 });
        return (
          (answer.body as { data?: { result?: { value: [number, string] }[] } }).data?.result ?? []
        );
      };
      await waitFor(
        async () => (await getJson(`http://127.0.0.1:${port}/-/ready`)).status === 200,
        {
          timeoutMs: PROMETHEUS_READY_MS,
          message: 'prometheus ready',
        },
      );
      await waitFor(
        async () => {
          const up = await query('up{job="peerkv"} == 1');
          const replication = await query('peerkv_replication_sent_entries_total');
          return up.length === 3 && replication.length >= 6;
        },
        {
          timeoutMs: SCRAPE_WAIT_MS,
          message: 'up == 1 for all three nodes and replication series',
        },
      );
    } finally {
      await stopProcess(server);
    }
  });
});

function startPrometheus(dir: string, port: number): ChildProcess {
  const log = fs.openSync(path.join(dir, 'prometheus.log'), 'a');
  const child = spawn(
    'prometheus',
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', log, log] },
  );
  fs.closeSync(log);
  child.unref();
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
