/**
 * Validation of a POST /batch body: `{"ops":[{"op":"put","key","value"},
 * {"op":"delete","key"}, ...]}`, each op optionally with `"ifMatch"` or
 * `"ifNoneMatch":"*"` (and `"ttl"` on a put). The whole batch is checked before
 * anything is written; an error names the op (`op` in the body, from 0).
 */
import { PeerkvError } from '../errors.ts';
import { limits } from '../limits.ts';
import type { Condition } from '../store/types.ts';
import { matchCondition } from './conditions.ts';
import { requireObject, validateKey, validateTtl, valueToJson } from './validate.ts';

export interface BatchOp {
  readonly op: 'put' | 'delete';
  readonly key: string;
  readonly valueJson: string | null;
  readonly condition?: Condition;
  readonly ttlSeconds?: number;
}

const OP_FIELDS = new Set(['op', 'key', 'value', 'ifMatch', 'ifNoneMatch', 'ttl']);

export function validateBatch(body: unknown, valueBytesMax: number): BatchOp[] {
  const object = requireObject(body, 'batch body');
  for (const name of Object.keys(object)) {
    if (name !== 'ops') throw new PeerkvError('BAD_BATCH', `unknown field ${JSON.stringify(name)}`);
  }
  const { ops } = object;
  if (!Array.isArray(ops)) throw new PeerkvError('BAD_BATCH', 'ops must be an array');
  if (ops.length === 0) throw new PeerkvError('BAD_BATCH', 'ops must not be empty');
  if (ops.length > limits.clientBatchOpsMax) {
    throw new PeerkvError(
      'BATCH_TOO_LARGE',
      `a batch holds at most ${limits.clientBatchOpsMax} ops`,
    );
  }
  const seen = new Map<string, number>();
  return ops.map((raw, index) => {
    let op: BatchOp;
    try {
      op = validateOp(raw, valueBytesMax);
    } catch (error) {
      if (!(error instanceof PeerkvError)) throw error;
      throw new PeerkvError(error.code, `op ${index}: ${error.message}`, {
        details: { op: index },
        cause: error,
      });
    }
    const first = seen.get(op.key);
    if (first !== undefined) {
      throw new PeerkvError('BAD_BATCH', `op ${index}: key is already written by op ${first}`, {
        details: { op: index },
      });
    }
    seen.set(op.key, index);
    return op;
  });
}

function validateOp(raw: unknown, valueBytesMax: number): BatchOp {
  const object = requireObject(raw, 'an op');
  for (const name of Object.keys(object)) {
    if (!OP_FIELDS.has(name)) {
      throw new PeerkvError('BAD_BATCH', `unknown field ${JSON.stringify(name.slice(0, 100))}`);
    }
  }
  const key = validateKey(object.key);
  const condition = opCondition(object);
  if (object.op === 'put') {
    const ttlSeconds = validateTtl(object.ttl);
    const valueJson = valueToJson(object.value, valueBytesMax);
    const op: BatchOp = { op: 'put', key, valueJson };
    return {
      ...op,
      ...(condition && { condition }),
      ...(ttlSeconds !== undefined && { ttlSeconds }),
    };
  }
  if (object.op === 'delete') {
    if (object.value !== undefined) throw new PeerkvError('BAD_BATCH', 'a delete has no value');
    if (object.ttl !== undefined) throw new PeerkvError('BAD_BATCH', 'a delete has no ttl');
    if (condition?.kind === 'absent') {
      throw new PeerkvError('BAD_CONDITION', 'ifNoneMatch is meaningless on a delete');
    }
    return { op: 'delete', key, valueJson: null, ...(condition && { condition }) };
  }
  throw new PeerkvError('BAD_BATCH', 'op must be "put" or "delete"');
}

function opCondition(object: Record<string, unknown>): Condition | undefined {
  const { ifMatch, ifNoneMatch } = object;
  if (ifMatch !== undefined && ifNoneMatch !== undefined) {
    throw new PeerkvError('BAD_CONDITION', 'give ifMatch or ifNoneMatch, not both');
  }
  if (ifMatch !== undefined) {
    if (typeof ifMatch !== 'string') {
      throw new PeerkvError('BAD_CONDITION', 'ifMatch must be a version string');
    }
    return matchCondition(ifMatch, 'ifMatch');
  }
  if (ifNoneMatch === undefined) return undefined;
  if (ifNoneMatch !== '*') throw new PeerkvError('BAD_CONDITION', 'ifNoneMatch must be "*"');
  return { kind: 'absent' };
}
