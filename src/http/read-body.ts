/**
 * Reads a request body with a byte limit and an idle timeout, and decodes it
 * as strict UTF-8. Oversize bodies fail fast (413) from Content-Length when it
 * is given, or as soon as the limit is crossed; a body that stalls fails 408.
 */
import type { IncomingMessage } from 'node:http';
import { PeerkvError } from '../errors.ts';

const decoder = new TextDecoder('utf-8', { fatal: true });

export interface BodyLimits {
  readonly bytesMax: number;
  readonly idleTimeoutMs: number;
}

export function readBody(req: IncomingMessage, limits: BodyLimits): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limits.bytesMax) {
    return Promise.reject(tooLarge(limits.bytesMax));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let timer = setTimeout(onIdle, limits.idleTimeoutMs);
    function finish(error: PeerkvError | undefined, text?: string): void {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onError).off('aborted', onAborted);
      if (error) {
        // Stop reading what is left; the response closes the connection.
        req.pause();
        reject(error);
      } else resolve(text ?? '');
    }
    function onData(chunk: Buffer): void {
      received += chunk.length;
      if (received > limits.bytesMax) {
        finish(tooLarge(limits.bytesMax));
        return;
      }
      chunks.push(chunk);
      clearTimeout(timer);
      timer = setTimeout(onIdle, limits.idleTimeoutMs);
    }
    function onEnd(): void {
      try {
        finish(undefined, decoder.decode(Buffer.concat(chunks, received)));
      } catch (cause) {
        finish(new PeerkvError('BAD_JSON', 'request body is not valid UTF-8', { cause }));
      }
    }
    function onIdle(): void {
      finish(new PeerkvError('REQUEST_TIMEOUT', 'request body timed out'));
    }
    function onError(cause: Error): void {
      finish(new PeerkvError('BAD_REQUEST', 'request body could not be read', { cause }));
    }
    function onAborted(): void {
      finish(new PeerkvError('BAD_REQUEST', 'request was aborted'));
    }
    req.on('data', onData).on('end', onEnd).on('error', onError).on('aborted', onAborted);
  });
}

/** Reads the body and parses it as JSON; an empty body gives `undefined`. */
export async function readJson(req: IncomingMessage, limits: BodyLimits): Promise<unknown> {
  const text = await readBody(req, limits);
  if (text.trim() === '') return undefined;
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
