/**
 * One HTTP exchange with one node over undici: the request with its own
 * timeouts and signal, the answer read up to a byte bound and parsed as
 * JSON. It decides nothing about failover; it reports what happened.
 */
import { Agent, type Dispatcher, request } from 'undici';
import { PeerkvBadAnswerError } from './errors.ts';

export interface TransportOptions {
  readonly token: string | undefined;
  readonly ca: string | Uint8Array | undefined;
  readonly responseBytesMax: number;
  readonly userAgent: string;
}

export interface Exchange {
  readonly method: 'GET' | 'PUT' | 'DELETE' | 'POST';
  readonly path: string;
  readonly body?: string;
}

export interface Answer {
  readonly status: number;
  readonly json: unknown;
  readonly headers: Record<string, string | string[] | undefined>;
}

export class Transport {
  readonly #agent: Dispatcher;
  readonly #options: TransportOptions;

  constructor(options: TransportOptions) {
    this.#options = options;
    this.#agent = new Agent({
      keepAliveTimeout: 4_000,
      connections: 64,
      ...(options.ca === undefined ? {} : { connect: { ca: caText(options.ca) } }),
    });
  }

  /** Sends one request to `node`; throws on network failure, timeout or abort (via `signal`). */
  async send(
    node: string,
    exchange: Exchange,
    signal: AbortSignal,
    timeoutMs: number,
  ): Promise<Answer> {
    const headers: Record<string, string> = {
      accept: 'application/json',
      'user-agent': this.#options.userAgent,
    };
    if (this.#options.token !== undefined) headers.authorization = `Bearer ${this.#options.token}`;
    if (exchange.body !== undefined) headers['content-type'] = 'application/json';
    const response = await request(`${node}${exchange.path}`, {
      dispatcher: this.#agent,
      method: exchange.method,
      headers,
      body: exchange.body,
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const text = await this.#readBounded(response.body);
    let json: unknown;
    try {
      json = text === '' ? null : JSON.parse(text);
    } catch (cause) {
      throw new PeerkvBadAnswerError(
        `${node} answered ${response.statusCode} with a body that is not JSON`,
        { cause },
      );
    }
    return { status: response.statusCode, json, headers: response.headers };
  }

  close(): Promise<void> {
    return this.#agent.close();
  }

  async #readBounded(body: Dispatcher.ResponseData['body']): Promise<string> {
    const chunks: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of body) {
      bytes += (chunk as Buffer).length;
      if (bytes > this.#options.responseBytesMax) {
        body.destroy();
        throw new PeerkvBadAnswerError(
          `answer exceeds ${this.#options.responseBytesMax} bytes (responseBytesMax)`,
        );
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks, bytes).toString('utf8');
  }
}

function caText(ca: string | Uint8Array): string | Buffer {
  return typeof ca === 'string' ? ca : Buffer.from(ca);
}
