// Checks the pieces of authentication without a server: the auth-file parser (every mistake a
// ConfigError), the redacting Secret and its constant-length compare, and the Authorizer's
// decision for each permission over fake requests, including the once-a-minute warning.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import { inspect } from 'node:util';
import pino from 'pino';
import { ConfigError } from '../../src/errors.ts';
import { Authorizer } from '../../src/security/authorizer.ts';
import { parseClusterSecret, type SecurityState } from '../../src/security/load-security.ts';
import { Secret, sha256 } from '../../src/security/secret.ts';
import { parseAuthFile } from '../../src/security/tokens.ts';
import { createTokenLines, parseTokenArgs } from '../../src/token-command.ts';
import { throwsPeerkv } from './assert-peerkv-error.ts';

const hex = (token: string) => sha256(token).toString('hex');
const authFile = (tokens: unknown) => JSON.stringify({ tokens });

function fakeRequest(
  authorization?: string | string[],
  remoteAddress = '10.0.0.1',
): IncomingMessage {
  const list = authorization === undefined ? undefined : [authorization].flat();
  return {
    headers: { authorization: list?.[0] },
    headersDistinct: { authorization: list },
    socket: { remoteAddress },
  } as unknown as IncomingMessage;
}

function capture() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { lines, log };
}

describe('auth file', () => {
  test('a valid file gives each token its grant, by the hash of the token', () => {
    const table = parseAuthFile(
      authFile([
        { name: 'app', sha256: hex('t1'), permissions: ['read', 'write'], prefixes: ['app/'] },
        { name: 'ops', sha256: hex('t2').toUpperCase(), permissions: ['admin'] },
      ]),
      'auth.json',
    );
    assert.equal(table.size, 2);
    assert.deepEqual(table.find('t1')?.prefixes, ['app/']);
    assert.ok(table.find('t2')?.permissions.has('admin'));
    assert.equal(table.find('t3'), undefined);
  });

  test('every mistake is a ConfigError naming the file', () => {
    const bad = [
      'not json',
      '{"tokens":{}}',
      authFile([{ name: '', sha256: hex('a'), permissions: ['read'] }]),
      authFile([{ name: 'x', sha256: 'abc', permissions: ['read'] }]),
      authFile([{ name: 'x', sha256: hex('a'), permissions: [] }]),
      authFile([{ name: 'x', sha256: hex('a'), permissions: ['root'] }]),
      authFile([{ name: 'x', sha256: hex('a'), permissions: ['read'], prefixes: [] }]),
      authFile([{ name: 'x', sha256: hex('a'), permissions: ['read'], prefixes: [''] }]),
      authFile([{ name: 'x', sha256: hex('a'), permissions: ['read'], prefix: ['a'] }]),
      authFile([
        { name: 'x', sha256: hex('a'), permissions: ['read'] },
        { name: 'y', sha256: hex('a'), permissions: ['write'] },
      ]),
    ];
    for (const text of bad) {
      assert.throws(
        () => parseAuthFile(text, 'auth.json'),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError, text);
          assert.match(error.message, /auth\.json/);
          return true;
        },
      );
    }
  });
});

describe('secret', () => {
  test('never shows itself in JSON, inspect or string form', () => {
    const secret = new Secret('s3cret-s3cret-s3cret');
    const shown = [JSON.stringify({ secret }), inspect({ secret }), `${secret}`, String(secret)];
    for (const text of shown) assert.ok(!text.includes('s3cret'), text);
    assert.equal(secret.reveal(), 's3cret-s3cret-s3cret');
  });

  test('matches only itself, whatever the candidate length (no throw on a length mismatch)', () => {
    const secret = new Secret('0123456789abcdef0123');
    assert.ok(secret.matches('0123456789abcdef0123'));
    for (const candidate of [
      '',
      '0',
      '0123456789abcdef012',
      '0123456789abcdef01234',
      'x'.repeat(5000),
    ]) {
      assert.equal(secret.matches(candidate), false);
    }
  });

  test('takes as long for a near miss as for a far one (coarse, medians of interleaved batches)', () => {
    const value = 'f'.repeat(64);
    const secret = new Secret(value);
    const near = `${value.slice(0, -1)}e`;
    const far = `0${value.slice(1)}`;
    const batchMs = (candidate: string) => {
      const started = performance.now();
      for (let i = 0; i < 2_000; i += 1) secret.matches(candidate);
      return performance.now() - started;
    };
    const median = (list: number[]) =>
      [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]!;
    const measureRatio = () => {
      const nearMs: number[] = [];
      const farMs: number[] = [];
      for (let round = 0; round < 15; round += 1) {
        nearMs.push(batchMs(near));
        farMs.push(batchMs(far));
      }
      return median(nearMs) / median(farMs);
    };
    // Hash-then-compare costs the same for both; an early-exit compare would stop at once on far.
    // A loaded 2-core machine can skew one measurement, so the check passes if any of three does.
    const ratios: number[] = [];
    for (let attempt = 0; attempt < 3; attempt += 1) {
      ratios.push(measureRatio());
      if (ratios.at(-1)! > 1 / 3 && ratios.at(-1)! < 3) break;
    }
    const last = ratios.at(-1)!;
    assert.ok(last > 1 / 3 && last < 3, `near/far time ratios ${ratios.map((r) => r.toFixed(2))}`);
  });

  test('a cluster secret must be printable ASCII of 16 to 1024 characters', () => {
    assert.equal(parseClusterSecret('0123456789abcdef\n', 'f').reveal(), '0123456789abcdef');
    for (const text of ['short', 'with space inside!!', 'é'.repeat(20), 'x'.repeat(1025)]) {
      assert.throws(() => parseClusterSecret(text, 'f'), ConfigError);
    }
  });
});

describe('authorizer', () => {
  const tokens = parseAuthFile(
    authFile([
      { name: 'reader', sha256: hex('read-token'), permissions: ['read'], prefixes: ['a/'] },
    ]),
    'auth.json',
  );
  const secret = new Secret('cluster-secret-0123456789');
  const make = (state: SecurityState, log = capture().log, now = () => 0) =>
    new Authorizer(state, { log, peerCertificateRequired: false, monoMs: now });

  test('with no auth configured every route is open, as before', () => {
    const open = make({ tokens: null, clusterSecret: null });
    for (const permission of ['open', 'read', 'write', 'admin', 'peer'] as const) {
      assert.equal(open.authorize(permission, fakeRequest()).prefixes, null);
    }
    assert.equal(open.peerAuthorization(), undefined);
  });

  test('tokens: 401 without or with an unknown token, 403 without the permission, scoped access', () => {
    const auth = make({ tokens, clusterSecret: secret });
    throwsPeerkv(() => auth.authorize('read', fakeRequest()), 'UNAUTHENTICATED');
    throwsPeerkv(() => auth.authorize('read', fakeRequest('Bearer nope')), 'UNAUTHENTICATED');
    throwsPeerkv(() => auth.authorize('write', fakeRequest('Bearer read-token')), 'FORBIDDEN');
    const access = auth.authorize('read', fakeRequest('Bearer read-token'));
    assert.equal(access.principal, 'reader');
    assert.ok(access.allows('a/1') && !access.allows('b/1'));
    assert.equal(
      auth.authorize('admin', fakeRequest(`Bearer ${secret.reveal()}`)).principal,
      'cluster',
    );
    throwsPeerkv(
      () => auth.authorize('read', fakeRequest(['Bearer read-token', 'Bearer read-token'])),
      'UNAUTHENTICATED',
    );
  });

  test('peer routes take only the cluster secret, and are closed with tokens but no secret', () => {
    const auth = make({ tokens, clusterSecret: secret });
    assert.equal(auth.peerAuthorization(), `Bearer ${secret.reveal()}`);
    assert.equal(
      auth.authorize('peer', fakeRequest(`Bearer ${secret.reveal()}`)).principal,
      'cluster',
    );
    throwsPeerkv(() => auth.authorize('peer', fakeRequest('Bearer read-token')), 'UNAUTHENTICATED');
    const noSecret = make({ tokens, clusterSecret: null });
    throwsPeerkv(
      () => noSecret.authorize('peer', fakeRequest('Bearer read-token')),
      'UNAUTHENTICATED',
    );
    const secretOnly = make({ tokens: null, clusterSecret: secret });
    assert.equal(secretOnly.authorize('write', fakeRequest()).principal, 'anyone');
    throwsPeerkv(() => secretOnly.authorize('peer', fakeRequest()), 'UNAUTHENTICATED');
  });

  test('refusals are logged once a minute per source, without the credential', () => {
    const { lines, log } = capture();
    let now = 0;
    const auth = make({ tokens, clusterSecret: secret }, log, () => now);
    for (let i = 0; i < 50; i += 1) {
      assert.throws(() => auth.authorize('peer', fakeRequest('Bearer guess-1234')));
    }
    assert.throws(() => auth.authorize('peer', fakeRequest('Bearer guess', '10.0.0.2')));
    assert.equal(lines.length, 2);
    now = 61_000;
    assert.throws(() => auth.authorize('peer', fakeRequest('Bearer guess-1234')));
    assert.equal(lines.length, 3);
    assert.ok(!JSON.stringify(lines).includes('guess'));
    assert.equal(lines[0]?.source, '10.0.0.1');
  });

  test('replace() swaps the secrets in force (SIGHUP)', () => {
    const auth = make({ tokens, clusterSecret: secret });
    const next = new Secret('another-secret-0123456789');
    auth.replace({ tokens, clusterSecret: next });
    throwsPeerkv(
      () => auth.authorize('peer', fakeRequest(`Bearer ${secret.reveal()}`)),
      'UNAUTHENTICATED',
    );
    assert.equal(
      auth.authorize('peer', fakeRequest(`Bearer ${next.reveal()}`)).principal,
      'cluster',
    );
  });
});

describe('peerkv token create', () => {
  test('prints a fresh token and the auth-file entry holding its hash', () => {
    const request = parseTokenArgs([
      'create',
      '--name',
      'app',
      '--permissions',
      'read,write',
      '--prefix',
      'app/',
      '--prefix',
      'x/',
    ]);
    assert.ok(request);
    const [token, entryLine] = createTokenLines(request).trimEnd().split('\n');
    assert.match(token!, /^pkv_[A-Za-z0-9_-]{43}$/);
    const entry = JSON.parse(entryLine!);
    assert.deepEqual(entry, {
      name: 'app',
      sha256: hex(token!),
      permissions: ['read', 'write'],
      prefixes: ['app/', 'x/'],
    });
    const table = parseAuthFile(authFile([entry]), 'auth.json');
    assert.equal(table.find(token!)?.name, 'app');
    assert.notEqual(createTokenLines(request).split('\n')[0], token);
  });

  test('bad flags are ConfigErrors', () => {
    for (const argv of [
      ['create'],
      ['create', '--name', 'x'],
      ['create', '--name', 'x', '--permissions', 'read,root'],
      ['create', '--name', 'x', '--permissions', 'read', '--prefix', ''],
      ['create', '--name', 'x', '--permissions', 'read', '--bogus'],
      ['delete'],
    ]) {
      assert.throws(() => parseTokenArgs(argv), ConfigError, argv.join(' '));
    }
    assert.equal(parseTokenArgs(['--help']), undefined);
  });
});
