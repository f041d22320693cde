/**
 * Reads a request body with a byte limit and decodes it as strict UTF-8.
 * Oversize bodies fail fast (413) from Content-Length when it is given, or as
 * soon as the limit is crossed. Every byte read is taken from the node-wide
 * body budget (src/http/body-budget.ts) and given back once the body is
 * parsed; a body that does not fit the budget gets 503 (before any of it is
 * read when its declared length already does not fit). A body that stalls is
 * cut by the server's request timeout (src/http/app.ts), which needs no timer
 * per request.
 */
import type { IncomingMessage } from 'node:http';
import { PeerkvError } from '../errors.ts';
import { type BodyBudget, budgetSpent } from './body-budget.ts';

export interface BodyLimits {
  readonly bytesMax: number;
  readonly budget: BodyBudget;
}

/** Reads the body and parses it as JSON; an empty body gives `undefined`. */
export async function readJson(req: IncomingMessage, limits: BodyLimits): Promise<unknown> {
  const held = { bytes: 0 };
  try {
    const text = await readBody(req, limits, held);
    if (text.length === 0 || text.trim() === '') return undefined;
    try {
      return JSON.parse(text);
    } catch (cause) {
      throw new PeerkvError('BAD_JSON', 'request body is not valid JSON', { cause });
    }
  } finally {
    limits.budget.give(held.bytes);
  }
}

/** Reads the body; the bytes it took from the budget are in `held` (the caller gives them back). */
function readBody(
  req: IncomingMessage,
  limits: BodyLimits,
  held: { bytes: number },
): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (declared > limits.bytesMax) return Promise.reject(tooLarge(limits.bytesMax));
  if (declared > 0 && !limits.budget.fits(declared)) return Promise.reject(budgetSpent());
  return new Promise((resolve, reject) => {
    // Decoded as it arrives (a chunk may end inside a character), so no byte copy is kept.
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const parts: string[] = [];
    const finish = (error: PeerkvError | undefined, text = ''): void => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('aborted', onAborted);
      parts.length = 0;
      if (error) {
        // Stop reading what is left; the error response closes the connection.
        req.pause();
        reject(error);
      } else resolve(text);
    };
    const decode = (chunk?: Buffer): boolean => {
      try {
        parts.push(chunk ? decoder.decode(chunk, { stream: true }) : decoder.decode());
        return true;
      } catch (cause) {
        finish(new PeerkvError('BAD_JSON', 'request body is not valid UTF-8', { cause }));
        return false;
      }
    };
    const onData = (chunk: Buffer): void => {
      if (held.bytes + chunk.length > limits.bytesMax) finish(tooLarge(limits.bytesMax));
      else if (!limits.budget.take(chunk.length)) finish(budgetSpent());
      else {
        held.bytes += chunk.length;
        decode(chunk);
      }
    };
    const onEnd = (): void => {
      if (decode()) finish(undefined, parts.join(''));
    };
    const onError = (cause: Error): void => {
      finish(new PeerkvError('BAD_REQUEST', 'request body could not be read', { cause }));
    };
    const onAborted = (): void => finish(new PeerkvError('BAD_REQUEST', 'request was aborted'));
    req.on('data', onData).on('end', onEnd).on('error', onError).on('aborted', onAborted);
  });
}

function tooLarge(bytesMax: number): PeerkvError {
  return new PeerkvError('BODY_TOO_LARGE', `request body exceeds ${bytesMax} bytes`, {
    headers: { Connection: 'close' },
  });
}
