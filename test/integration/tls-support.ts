// Test certificates made with the real openssl binary: a CA, and certificates it signs for
// 127.0.0.1 (usable as server and client certificates); plus an undici client that trusts a CA
// and optionally presents a certificate.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, request } from 'undici';

const OPENSSL_TIMEOUT_MS = 20_000;
const HTTPS_TIMEOUT_MS = 5_000;

export const opensslMissing =
  spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0
    ? false
    : 'openssl not installed (.ci/run installs it)';

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

function openssl(dir: string, args: readonly string[]): void {
  const result = spawnSync('openssl', args, {
    cwd: dir,
    encoding: 'utf8',
    timeout: OPENSSL_TIMEOUT_MS,
  });
  assert.equal(result.status, 0, `openssl ${args.join(' ')}: ${result.stderr}`);
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A self-signed CA in `dir` named `name`. */
export function makeCa(dir: string, name: string): CertFiles {
  const files = { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  openssl(dir, [
    'req',
    '-x509',
    ...EC_KEY,
    '-keyout',
    files.key,
    '-out',
    files.cert,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  ]);
  return files;
}

/** A certificate for 127.0.0.1 and localhost, signed by `ca`, for both server and client use. */
export function makeCert(dir: string, ca: CertFiles, name: string): CertFiles {
  const files = { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(
    ext,
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n',
  );
  openssl(dir, ['req', ...EC_KEY, '-keyout', files.key, '-out', csr, '-subj', `/CN=${name}`]);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-set_serial',
    String(Date.now() + Math.floor(Math.random() * 1e6)),
    '-out',
    files.cert,
    '-days',
    '2',
    '-extfile',
    ext,
  ]);
  return files;
}

export interface HttpsAnswer {
  readonly status: number;
  readonly text: string;
  readonly json: unknown;
}

/** An https client trusting `caFile`, presenting `client` when given. */
export function httpsClient(caFile: string, client?: CertFiles) {
  const agent = new Agent({
    connect: {
      ca: fs.readFileSync(caFile),
      cert: client ? fs.readFileSync(client.cert) : undefined,
      key: client ? fs.readFileSync(client.key) : undefined,
    },
  });
  return {
    async call(
      method: 'GET' | 'POST' | 'PUT',
      url: string,
      options: { json?: unknown; headers?: Record<string, string> } = {},
    ): Promise<HttpsAnswer> {
      const headers: Record<string, string> = { ...options.headers };
      if (options.json !== undefined) headers['content-type'] = 'application/json';
      const response = await request(url, {
        method,
        dispatcher: agent,
        headers,
        reset: true,
        body: options.json === undefined ? undefined : JSON.stringify(options.json),
        signal: AbortSignal.timeout(HTTPS_TIMEOUT_MS),
      });
      const text = await response.body.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined; // not JSON: callers look at the text
      }
      return { status: response.statusCode, text, json };
    },
    close: () => agent.close(),
  };
}
