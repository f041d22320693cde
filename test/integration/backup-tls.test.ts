// Checks `peerkv backup` against a node that serves HTTPS: with `--ca` the copy arrives whole and
// restores; without it the node's certificate is refused and no file is left. Method: one real
// node with a certificate the test makes with openssl, the real CLI, and `peerkv restore`.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Cluster, freePort, NodeProcess, waitFor } from '../helpers/node-process.ts';
import { runPeerkv } from './node-support.ts';
import { type CertFiles, httpsClient, makeCa, makeCert, opensslMissing } from './tls-support.ts';

const READY_MS = 40_000;
const CLI_MS = 60_000;

describe('peerkv backup over HTTPS', { skip: opensslMissing }, () => {
  let dir: string;
  let ca: CertFiles;
  let cluster: Cluster;
  let url: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peerkv-backup-tls-'));
    ca = makeCa(dir, 'ca');
    const cert = makeCert(dir, ca, 'node');
    const port = await freePort();
    url = `https://127.0.0.1:${port}`;
    const node = new NodeProcess({
      port,
      dataDir: path.join(dir, 'node'),
      peers: [],
      logPath: path.join(dir, 'node.log'),
      name: `tls-backup:${port}`,
      extraArgs: ['--tls-cert', cert.cert, '--tls-key', cert.key],
    });
    cluster = new Cluster(dir, [node]);
    node.spawn();
    const client = httpsClient(ca.cert);
    await waitFor(async () => (await client.call('GET', `${url}/readyz`)).status === 200, {
      timeoutMs: READY_MS,
      message: 'the https node is ready',
    });
    const write = await client.call('PUT', `${url}/kv/secure`, { json: 'yes' });
    assert.equal(write.status, 200, write.text);
  });

  after(async () => {
    await cluster?.cleanup();
  });

  test('with --ca the copy arrives whole; without it the certificate is refused', async () => {
    const out = path.join(dir, 'copy.db');
    const refused = await runPeerkv(['backup', '--node', url, '--out', out], CLI_MS);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /certificate/i);
    assert.ok(!fs.existsSync(out) && !fs.existsSync(`${out}.partial`), 'no file for a refusal');

    const copied = await runPeerkv(
      ['backup', '--node', url, '--ca', ca.cert, '--out', out],
      CLI_MS,
    );
    assert.equal(copied.code, 0, copied.stderr);
    assert.equal(fs.readFileSync(out).subarray(0, 16).toString('latin1'), 'SQLite format 3\u0000');
    const restored = await runPeerkv(
      ['restore', out, '--data-dir', path.join(dir, 'restored')],
      CLI_MS,
    );
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stdout, /: 1 entries/);
  });
});
