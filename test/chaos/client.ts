// One client operation against one node, directly (not through a proxy), turned into an outcome:
// ack (2xx with the answer's version), failed (4xx/5xx, or refused before anything was sent),
// or unknown (no answer: the write may or may not have happened).
import { del, getJson, HttpRequestError, type HttpResult, putJson } from '../helpers/http.ts';
import type { Outcome, ReadResult } from './history.ts';
import type { OpStep } from './schedule.ts';

const VERSION_PATTERN = /^[0-9a-f]{14}-[0-9a-f]{16}$/;
/** Connection errors that prove the request never reached the node. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED']);

export interface OpAnswer {
  readonly outcome: Outcome;
  readonly status?: number;
  readonly version?: string;
  /** The expiry a TTL put was acknowledged with. */
  readonly expiresAt?: number;
  /** The precondition a compare-and-swap sent: a version, or '*' for If-None-Match. */
  readonly condition?: string;
  readonly read?: ReadResult;
  readonly error?: string;
  readonly badAnswer?: string;
}

export async function performOp(
  baseUrl: string,
  step: OpStep,
  timeoutMs: number,
): Promise<OpAnswer> {
  const url = `${baseUrl}/kv/${encodeURIComponent(step.key)}`;
  let result: HttpResult;
  let condition: string | undefined;
  try {
    if (step.op === 'put' && step.conditional) {
      const read = readAnswer(await getJson(url, { timeoutMs }), step.key);
      if (read.outcome !== 'ack') return { ...read, outcome: 'failed' };
      condition = read.read?.found ? read.read.version! : '*';
      const headers: Record<string, string> =
        condition === '*' ? { 'if-none-match': '*' } : { 'if-match': `"${condition}"` };
      result = await putJson(url, step.value, { timeoutMs, headers });
    } else if (step.op === 'put') {
      const ttl = step.ttlSeconds === undefined ? '' : `?ttl=${step.ttlSeconds}`;
      result = await putJson(`${url}${ttl}`, step.value, { timeoutMs });
    } else if (step.op === 'delete') result = await del(url, { timeoutMs });
    else result = await getJson(url, { timeoutMs });
  } catch (error) {
    return { ...fromError(error), ...(condition !== undefined && { condition }) };
  }
  if (step.op === 'get') return readAnswer(result, step.key);
  return writeAnswer(result, step, condition);
}

function writeAnswer(result: HttpResult, step: OpStep, condition: string | undefined): OpAnswer {
  const conditionField = condition === undefined ? {} : { condition };
  if (result.status < 200 || result.status > 299) {
    const error = result.text.slice(0, 200);
    return { outcome: 'failed', status: result.status, error, ...conditionField };
  }
  const version = versionOf(result.body);
  const body = result.body as { key?: unknown; expiresAt?: unknown };
  const expiryOk = step.ttlSeconds === undefined || Number.isSafeInteger(body.expiresAt);
  if (version === undefined || body.key !== step.key || !expiryOk) {
    // The node answered 2xx but the answer is broken: the write may have happened.
    return { outcome: 'unknown', status: result.status, badAnswer: result.text.slice(0, 200) };
  }
  const expiresAt = step.ttlSeconds === undefined ? {} : { expiresAt: body.expiresAt as number };
  return { outcome: 'ack', status: result.status, version, ...expiresAt, ...conditionField };
}

function readAnswer(result: HttpResult, key: string): OpAnswer {
  if (result.status === 404) return { outcome: 'ack', status: 404, read: { found: false } };
  if (result.status !== 200) {
    return { outcome: 'failed', status: result.status, error: result.text.slice(0, 200) };
  }
  const body = result.body as { key?: unknown; value?: unknown; expiresAt?: unknown };
  const version = versionOf(result.body);
  if (version === undefined || body.key !== key || !('value' in body)) {
    return { outcome: 'failed', status: 200, badAnswer: result.text.slice(0, 200) };
  }
  const expiresAt = typeof body.expiresAt === 'number' ? { expiresAt: body.expiresAt } : {};
  return {
    outcome: 'ack',
    status: 200,
    read: { found: true, value: body.value, version, ...expiresAt },
  };
}

function versionOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || !('version' in body)) return undefined;
  const version = body.version;
  return typeof version === 'string' && VERSION_PATTERN.test(version) ? version : undefined;
}

function fromError(error: unknown): OpAnswer {
  if (!(error instanceof HttpRequestError)) {
    // Not a network failure: a bug in the checker itself. Let it surface.
    throw error;
  }
  const code = error.causeCode;
  if (code !== undefined && NOT_SENT_CODES.has(code)) return { outcome: 'failed', error: code };
  return { outcome: 'unknown', error: error.timedOut ? 'timeout' : (code ?? error.message) };
}
