// Checks the client's pure failover decisions: which statuses move on to another node, the
// capped full-jitter backoff (seeded random draws, seed printed), Retry-After parsing, node order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  backoffDelayMs,
  isRetryableStatus,
  nodeOrder,
  retryAfterMs,
} from '../../src/client/failover.ts';
import { createRng } from '../helpers/fault-proxy.ts';

const options = { backoffMsMin: 50, backoffMsMax: 1_000 };

test('only 502, 503 and 504 move on to another node', () => {
  for (const status of [502, 503, 504]) assert.equal(isRetryableStatus(status), true);
  for (const status of [200, 400, 401, 403, 404, 405, 408, 413, 500]) {
    assert.equal(isRetryableStatus(status), false, String(status));
  }
});

test('backoff doubles from the minimum, is capped, and jitters below its ceiling', () => {
  const seed = Date.now() % 100_000;
  const random = createRng(seed);
  for (let retry = 1; retry <= 12; retry += 1) {
    const ceiling = Math.min(1_000, 50 * 2 ** (retry - 1));
    for (let draw = 0; draw < 50; draw += 1) {
      const delay = backoffDelayMs(retry, random, options);
      assert.ok(delay >= 0 && delay <= ceiling, `seed ${seed}: retry ${retry} waited ${delay}`);
    }
  }
  assert.equal(
    backoffDelayMs(1, () => 0.999_999, options),
    49,
  );
  assert.equal(
    backoffDelayMs(30, () => 0.999_999, options),
    999,
  );
  assert.equal(
    backoffDelayMs(3, () => 0, options),
    0,
  );
});

test('Retry-After raises the wait, still under the cap', () => {
  assert.equal(
    backoffDelayMs(1, () => 0, options, 200),
    200,
  );
  assert.equal(
    backoffDelayMs(1, () => 0, options, 60_000),
    1_000,
  );
  assert.equal(retryAfterMs('2'), 2_000);
  assert.equal(retryAfterMs(['1']), 1_000);
  for (const bad of [undefined, '', 'soon', '-1', '1.5', 'Wed, 21 Oct 2015 07:28:00 GMT']) {
    assert.equal(retryAfterMs(bad), 0, String(bad));
  }
});

test('nodes are tried from the preferred one, wrapping around', () => {
  assert.deepEqual(nodeOrder(3, 0), [0, 1, 2]);
  assert.deepEqual(nodeOrder(3, 2), [2, 0, 1]);
  assert.deepEqual(nodeOrder(1, 0), [0]);
});
