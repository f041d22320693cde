/**
 * `POST /batch`: up to `clientBatchOpsMax` puts and deletes applied all or
 * none in one transaction on this node. Every op is validated before any is
 * written (400 names the op); conditions are checked in the transaction, and
 * one failed condition refuses the whole batch (412 names the op and the
 * key's current version). On success every op's new version is answered.
 */
import { PeerkvError } from '../errors.ts';
import { clientBatchBodyBytes, limits } from '../limits.ts';
import type { Access } from '../security/access.ts';
import type { MutationResult } from '../store/types.ts';
import { formatVersion } from '../version.ts';
import type { BodyBudget } from './body-budget.ts';
import { versionMismatch } from './conditions.ts';
import { expiryOf, type KvService, type LocalWrite, type Route } from './kv-routes.ts';
import { readJson } from './read-body.ts';
import { sendJsonText } from './respond.ts';
import { type BatchOp, validateBatch } from './validate-batch.ts';

export interface BatchRouteOptions {
  readonly valueBytesMax: number;
  readonly wallMs: () => number;
  readonly bodyBudget: BodyBudget;
}

export function batchRoutes(service: KvService, options: BatchRouteOptions): Route[] {
  const limitsOfBody = {
    bytesMax: clientBatchBodyBytes(options.valueBytesMax),
    budget: options.bodyBudget,
  };
  return [
    {
      method: 'POST',
      pattern: '/batch',
      permission: 'write',
      handler: async (req, res) => {
        // Checked before a byte of the body is read: room in the write queue for a whole batch.
        if (service.writeRoom() < limits.clientBatchOpsMax) {
          throw new PeerkvError('OVERLOADED', 'write queue is full, retry later', {
            headers: { 'Retry-After': '1', Connection: 'close' },
          });
        }
        const body = await readJson(req, limitsOfBody);
        const ops = validateBatch(body, options.valueBytesMax);
        for (const [index, op] of ops.entries()) requireOpKey(req.access, op.key, index);
        const nowMs = options.wallMs();
        const results = await service.writeBatch(ops.map((op) => toMutation(op, nowMs)));
        const failed = results.findIndex((result) => result.refused === 'condition');
        if (failed >= 0) {
          throw versionMismatch(
            ops[failed]!.key,
            results[failed]!,
            { op: failed },
            `op ${failed}: `,
          );
        }
        sendJsonText(res, 200, batchAnswer(ops, results));
      },
    },
  ];
}

/** A token limited to prefixes may write only keys under them: the batch is refused whole. */
function requireOpKey(access: Access, key: string, index: number): void {
  if (access.allows(key)) return;
  throw new PeerkvError('FORBIDDEN', `op ${index}: key is outside the prefixes of this token`, {
    details: { op: index },
  });
}

function toMutation(op: BatchOp, nowMs: number): LocalWrite {
  return {
    kind: 'local',
    key: op.key,
    valueJson: op.valueJson,
    ...expiryOf(op.ttlSeconds, nowMs),
    ...(op.condition && { condition: op.condition }),
  };
}

function batchAnswer(ops: readonly BatchOp[], results: readonly MutationResult[]): string {
  const parts = ops.map((op, index) => {
    const version = formatVersion(results[index]!.version);
    return `{"op":"${op.op}","key":${JSON.stringify(op.key)},"version":"${version}"}`;
  });
  return `{"ops":[${parts.join(',')}]}`;
}
