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
  try {
    if (step.op === 'put') result = await putJson(url, step.value, { timeoutMs });
    else if (step.op === 'delete') result = await del(url, { timeoutMs });
    else result = await getJson(url, { timeoutMs });
  } catch (error) {
    return fromError(error);
  }
  if (step.op === 'get') return readAnswer(result, step.key);
  if (result.status < 200 || result.status > 299) {
    return { outcome: 'failed', status: result.status, error: result.text.slice(0, 200) };
  }
  const version = versionOf(result.body);
  if (version === undefined || (result.body as { key?: unknown }).key !== step.key) {
    // The node answered 2xx but the answer is broken: the write may have happened.
    return { outcome: 'unknown', status: result.status, badAnswer: result.text.slice(0, 200) };
  }
  return { outcome: 'ack', status: result.status, version };
}

function readAnswer(result: HttpResult, key: string): OpAnswer {
  if (result.status === 404) return { outcome: 'ack', status: 404, read: { found: false } };
  if (result.status !== 200) {
    return { outcome: 'failed', status: result.status, error: result.text.slice(0, 200) };
  }
  const body = result.body as { key?: unknown; value?: unknown };
  const version = versionOf(result.body);
  if (version === undefined || body.key !== key || !('value' in body)) {
    return { outcome: 'failed', status: 200, badAnswer: result.text.slice(0, 200) };
  }
  return { outcome: 'ack', status: 200, read: { found: true, value: body.value, version } };
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
