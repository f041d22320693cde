// Checks the operator routes over the real HTTP layer on port 0 with a fake node behind them:
// /healthz always 200, /readyz 503 NOT_READY with the reason until the node is ready, /metrics in
// the Prometheus text format counting requests and refusals; and the live-key counter that feeds
// peerkv_keys stays exact when commits race the start-up count.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { createHttpServer, type HttpServer } from '../../src/http/app.ts';
import { opsRoutes } from '../../src/http/ops-routes.ts';
import { LiveKeyCounter } from '../../src/metrics/live-keys.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import { Authorizer } from '../../src/security/authorizer.ts';
import type { Mutation, MutationResult } from '../../src/store/types.ts';
import { getJson } from '../helpers/http.ts';

describe('operator routes', () => {
  let http: HttpServer;
  let url = '';
  let notReady: string | null = 'start-up digest check running';
  const metrics = new Metrics('0123456789abcdef');

  before(async () => {
    const log = pino({ level: 'silent' });
    const authorizer = new Authorizer(
      { tokens: null, clusterSecret: null },
      { log, peerCertificateRequired: false, monoMs: () => performance.now() },
    );
    const routes = opsRoutes({
      notReadyReason: () => notReady,
      metricsContentType: metrics.contentType,
      metricsText: () => metrics.text(),
    });
    http = createHttpServer(routes, log, {
      connectionsMax: 16,
      requestTimeoutMs: 5_000,
      authorizer,
      metrics,
      tls: null,
    });
    await new Promise<void>((resolve) => http.server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(http.server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => http.server.close(() => resolve())));

  test('/healthz answers 200 whenever the process serves', async () => {
    const answer = await getJson(`${url}/healthz`);
    assert.equal(answer.status, 200);
    assert.equal(answer.text, '{"status":"ok"}');
  });

  test('/readyz answers 503 NOT_READY with the reason, then 200 once ready', async () => {
    const waiting = await getJson(`${url}/readyz`);
    assert.equal(waiting.status, 503);
    assert.deepEqual(waiting.body, {
      error: 'not ready: start-up digest check running',
      code: 'NOT_READY',
    });
    notReady = null;
    const ready = await getJson(`${url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(ready.text, '{"status":"ready"}');
  });

  test('/metrics counts requests by route and status, and refusals by reason', async () => {
    assert.equal((await getJson(`${url}/nowhere`)).status, 404);
    const answer = await getJson(`${url}/metrics`);
    assert.equal(answer.status, 200);
    assert.match(answer.headers['content-type'] ?? '', /^text\/plain; version=0\.0\.4/);
    assert.match(
      answer.text,
      /^peerkv_http_request_duration_seconds_count\{route="\/readyz",method="GET",status="503"\} 1$/m,
    );
    assert.match(answer.text, /^peerkv_rejected_requests_total\{reason="unavailable"\} 1$/m);
    assert.match(answer.text, /route="unmatched",method="GET",status="404"/);
    assert.match(answer.text, /^peerkv_node_info\{node_id="0123456789abcdef"\} 1$/m);
  });
});

describe('live key counter', () => {
  const local = (key: string, valueJson: string | null): Mutation => ({
    kind: 'local',
    key,
    valueJson,
  });
  const result = (applied: boolean, existed: boolean): MutationResult => ({
    applied,
    existed,
    version: { timestamp: 1, nodeId: '0123456789abcdef' },
  });

  test('adds the commits the counting snapshot missed, and only those', () => {
    const counter = new LiveKeyCounter();
    assert.equal(counter.live, null);
    counter.noteCommit(
      [local('a', '1'), local('b', '1')],
      [result(true, false), result(true, false)],
      2,
    );
    counter.noteCommit([local('a', null)], [result(true, true)], 3);
    counter.noteCommit(
      [local('c', '1'), local('b', '2')],
      [result(true, false), result(true, true)],
      5,
    );
    // The worker's snapshot held the first two commits: a deleted, b live -> 1 live row.
    counter.counted(1, 3);
    assert.equal(counter.live, 2);
    counter.noteCommit([local('c', null)], [result(true, true)], 6);
    counter.noteCommit([local('d', '1')], [result(false, false)], 6);
    assert.equal(counter.live, 1);
  });
});
