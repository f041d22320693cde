/**
 * Reads a request body with a byte limit and decodes it as strict UTF-8.
 * Oversize bodies fail fast (413) from Content-Length when it is given, or as
 * soon as the limit is crossed. A body that stalls is cut by the server's
 * request timeout (src/http/app.ts), which needs no timer per request.
 */
import type { IncomingMessage } from 'node:http';
import { PeerkvError } from '../errors.ts';

const decoder = new TextDecoder('utf-8', { fatal: true });

export interface BodyLimits {
  readonly bytesMax: number;
}

export function readBody(req: IncomingMessage, limits: BodyLimits): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (declared > limits.bytesMax) return Promise.reject(tooLarge(limits.bytesMax));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const finish = (error: PeerkvError | undefined, text = ''): void => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('aborted', onAborted);
      if (error) {
        // Stop reading what is left; the error response closes the connection.
        req.pause();
        reject(error);
      } else resolve(text);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limits.bytesMax) finish(tooLarge(limits.bytesMax));
      else chunks.push(chunk);
    };
    const onEnd = (): void => {
      try {
        const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received);
        finish(undefined, decoder.decode(bytes));
      } catch (cause) {
        finish(new PeerkvError('BAD_JSON', 'request body is not valid UTF-8', { cause }));
      }
    };
    const onError = (cause: Error): void => {
      finish(new PeerkvError('BAD_REQUEST', 'request body could not be read', { cause }));
    };
    const onAborted = (): void => finish(new PeerkvError('BAD_REQUEST', 'request was aborted'));
    req.on('data', onData).on('end', onEnd).on('error', onError).on('aborted', onAborted);
  });
}

/** Reads the body and parses it as JSON; an empty body gives `undefined`. */
export async function readJson(req: IncomingMessage, limits: BodyLimits): Promise<unknown> {
  const text = await readBody(req, limits);
  if (text.length === 0 || text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new PeerkvError('BAD_JSON', 'request body is not valid JSON', { cause });
  }
}

function tooLarge(bytesMax: number): PeerkvError {
  return new PeerkvError('BODY_TOO_LARGE', `request body exceeds ${bytesMax} bytes`, {
    headers: { Connection: 'close' },
  });
}
