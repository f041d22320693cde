// Checks TLS on real node processes with a CA and certificates the test makes with openssl: three
// nodes serve HTTPS and call each other over https:// trusting the CA, with mutual TLS and the
// cluster secret on; writes replicate and a client trusting the CA reads them; plain HTTP and
// untrusting clients get nothing; peer routes refuse callers without a CA-signed certificate even
// with the secret; and SIGHUP makes a node serve a replaced certificate without a restart.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { createClient } from '../../src/client/index.ts';
import { getJson } from '../helpers/http.ts';
import { Cluster, freePorts, NodeProcess, waitFor } from '../helpers/node-process.ts';
import { runBin } from './cli-client-support.ts';
import { bearer, writeSecretFile } from './security-support.ts';
import { type CertFiles, httpsClient, makeCa, makeCert, opensslMissing } from './tls-support.ts';

const READY_MS = 20_000;

function servedSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: fs.readFileSync(ca) }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolve(serial);
    });
    socket.setTimeout(5_000, () => socket.destroy(new Error('tls connect timed out')));
    socket.once('error', reject);
  });
}

describe('a 3-node cluster over HTTPS with mutual TLS', { skip: opensslMissing }, () => {
  let dir: string;
  let cluster: Cluster;
  let ca: CertFiles;
  let rogueCa: CertFiles;
  const certs: CertFiles[] = [];
  let secret: string;
  let client: ReturnType<typeof httpsClient>;
  const urls: string[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peerkv-tls-'));
    ca = makeCa(dir, 'ca');
    rogueCa = makeCa(dir, 'rogue-ca');
    for (let i = 0; i < 3; i += 1) certs.push(makeCert(dir, ca, `node${i}`));
    const secretFile = path.join(dir, 'secret');
    secret = writeSecretFile(secretFile);
    const ports = await freePorts(3);
    urls.push(...ports.map((port) => `https://127.0.0.1:${port}`));
    const nodes = ports.map(
      (port, i) =>
        new NodeProcess({
          port,
          dataDir: path.join(dir, `node-${i}`),
          peers: urls,
          logPath: path.join(dir, `node-${i}.log`),
          name: `tls${i}:${port}`,
          extraArgs: [
            '--tls-cert',
            certs[i]!.cert,
            '--tls-key',
            certs[i]!.key,
            '--tls-ca',
            ca.cert,
            '--tls-verify-peers',
            '--cluster-secret-file',
            secretFile,
          ],
        }),
    );
    for (const node of nodes) fs.mkdirSync(node.dataDir);
    cluster = new Cluster(dir, nodes);
    client = httpsClient(ca.cert);
    for (const node of nodes) node.spawn();
    for (const [i, node] of nodes.entries()) {
      await waitFor(async () => (await client.call('GET', `${urls[i]}/readyz`)).status === 200, {
        timeoutMs: READY_MS,
        message: `${node.name} ready over https`,
      }).catch((error: unknown) => {
        cluster.printLogTails();
        throw error;
      });
    }
  });
  after(async () => {
    await client?.close();
    await cluster?.cleanup();
  });

  test('writes replicate over https and a client trusting the CA reads them', async () => {
    const write = await client.call('POST', `${urls[0]}/store`, {
      json: { key: 'hello', value: 'tls' },
    });
    assert.equal(write.status, 200, write.text);
    await waitFor(
      async () =>
        (await client.call('GET', `${urls[2]}/store/key?key=hello`)).text === '{"value":"tls"}',
      { timeoutMs: 10_000, message: 'hello replicated to node 2 over https' },
    );
    const status = await client.call('GET', `${urls[1]}/cluster`);
    const peers = (status.json as { peers: { state: string; url: string }[] }).peers;
    assert.deepEqual(
      peers.map((peer) => peer.state),
      ['up', 'up'],
    );
    assert.ok(peers.every((peer) => peer.url.startsWith('https://')));
  });

  test('the client library (ca) and the CLI (--ca) trust the CA; without it they refuse', async () => {
    const trusting = createClient({ nodes: [urls[1]!], ca: fs.readFileSync(ca.cert) });
    const untrusting = createClient({ nodes: [urls[1]!], timeoutMs: 3_000 });
    try {
      await trusting.put('tls/library', { via: 'ca' });
      assert.deepEqual((await trusting.get('tls/library'))?.value, { via: 'ca' });
      await assert.rejects(untrusting.get('tls/library'), /certificate|self.signed|verify/i);
    } finally {
      await trusting.close();
      await untrusting.close();
    }
    const put = await runBin([
      'put',
      'tls/cli',
      '"over https"',
      '--node',
      urls[2]!,
      '--ca',
      ca.cert,
    ]);
    assert.equal(put.code, 0, put.stderr);
    await waitFor(
      async () => {
        const again = await runBin([
          'get',
          'tls/library',
          '--json',
          '--node',
          urls[2]!,
          '--ca',
          ca.cert,
        ]);
        return again.code === 0 && (JSON.parse(again.stdout) as { value: unknown }).value;
      },
      { timeoutMs: 10_000, message: 'tls/library replicated and read with --ca' },
    );
    const refused = await runBin(['get', 'tls/cli', '--node', urls[2]!, '--timeout', '3']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /certificate|self.signed|verify/i);
    assert.equal(refused.stderr.trimEnd().split('\n').length, 1, 'one line on stderr');
  });

  test('plain HTTP and clients that do not trust the CA get no answer', async () => {
    const port = cluster.node(0).port;
    await assert.rejects(getJson(`http://127.0.0.1:${port}/ping`, { timeoutMs: 3_000 }));
    const untrusting = httpsClient(rogueCa.cert);
    try {
      await assert.rejects(
        untrusting.call('GET', `${urls[0]}/ping`),
        /certificate|self.signed|verify/i,
      );
    } finally {
      await untrusting.close();
    }
  });

  test('peer routes need a certificate the CA signed, even with the cluster secret', async () => {
    const rogue = makeCert(dir, rogueCa, 'rogue');
    const withRogue = httpsClient(ca.cert, rogue);
    const withNode = httpsClient(ca.cert, certs[1]);
    try {
      const attempts = [
        await client.call('GET', `${urls[0]}/sync/digest`, { headers: bearer(secret) }),
        await withRogue.call('GET', `${urls[0]}/sync/digest`, { headers: bearer(secret) }),
        await withRogue.call('POST', `${urls[0]}/replicate`, {
          json: { key: 'forged', value: 1 },
          headers: bearer(secret),
        }),
      ];
      for (const answer of attempts) {
        assert.equal(answer.status, 403, answer.text);
        assert.equal((answer.json as { code: string }).code, 'FORBIDDEN');
      }
      assert.equal((await client.call('GET', `${urls[0]}/store/key?key=forged`)).status, 404);
      const good = await withNode.call('GET', `${urls[0]}/sync/digest`, {
        headers: bearer(secret),
      });
      assert.equal(good.status, 200, good.text);
      const noSecret = await withNode.call('GET', `${urls[0]}/sync/digest`);
      assert.equal(noSecret.status, 401, 'a certificate alone is not enough');
    } finally {
      await withRogue.close();
      await withNode.close();
    }
  });

  test('SIGHUP makes a node serve a replaced certificate, without a restart', async () => {
    const node = cluster.node(0);
    const before = await servedSerial(node.port, ca.cert);
    const fresh = makeCert(dir, ca, 'node0-renewed');
    fs.copyFileSync(fresh.cert, certs[0]!.cert);
    fs.copyFileSync(fresh.key, certs[0]!.key);
    const pid = node.pid;
    node.kill('SIGHUP');
    const after = await waitFor(
      async () => {
        const serial = await servedSerial(node.port, ca.cert);
        return serial !== before && serial;
      },
      { timeoutMs: 5_000, message: 'the renewed certificate served' },
    );
    assert.notEqual(after, before);
    assert.equal(node.pid, pid, 'same process');
    const write = await client.call('POST', `${urls[1]}/store`, {
      json: { key: 'after-hup', value: 1 },
    });
    assert.equal(write.status, 200);
    await waitFor(
      async () => (await client.call('GET', `${urls[0]}/store/key?key=after-hup`)).status === 200,
      { timeoutMs: 10_000, message: 'replication into the reloaded node' },
    );
  });
});
