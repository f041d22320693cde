/**
 * Wires one node together: config -> store -> write queue -> HTTP, and takes
 * it apart again in the opposite order on shutdown. Nothing else starts or
 * stops the pieces.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { HybridClock } from './clock.ts';
import type { NodeConfig } from './config.ts';
import { ConfigError } from './errors.ts';
import { createHttpServer } from './http/app.ts';
import { type KvService, kvRoutes } from './http/kv-routes.ts';
import { limits } from './limits.ts';
import { KvStore } from './store/kv-store.ts';
import type { MutationResult } from './store/types.ts';
import { WriteQueue } from './store/write-queue.ts';

export class PeerkvNode {
  readonly store: KvStore;
  readonly writes: WriteQueue;
  readonly #server: Server;
  readonly #log: Logger;
  readonly #config: NodeConfig;

  private constructor(config: NodeConfig, log: Logger) {
    this.#config = config;
    this.#log = log;
    const wallMs = () => Date.now() + config.clockOffsetMs;
    this.store = new KvStore(config.dataDir, config.sync, new HybridClock(wallMs));
    this.writes = new WriteQueue(this.store, {
      commitMutationsMax: limits.commitMutationsMax,
      queuedMutationsMax: limits.writeQueueMutationsMax,
    });
    const routes = kvRoutes(this.#kvService(), { valueBytesMax: config.valueBytesMax, wallMs });
    this.#server = createHttpServer(routes, log.child({ component: 'http' }), {
      connectionsMax: config.connectionsMax,
    });
  }

  static async start(config: NodeConfig, log: Logger): Promise<PeerkvNode> {
    const node = new PeerkvNode(config, log);
    try {
      await node.#listen();
    } catch (error) {
      node.store.close();
      throw error;
    }
    log.info(
      {
        nodeId: node.store.nodeId,
        port: node.port,
        dataDir: config.dataDir,
        peers: config.peers,
        keys: node.store.digest.entryCount(),
      },
      'node started',
    );
    return node;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** Stops accepting, lets in-flight requests finish, commits, closes. */
  async stop(): Promise<void> {
    this.#log.info('node stopping');
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    const grace = setTimeout(() => this.#server.closeAllConnections(), limits.shutdownGraceMs);
    await closed;
    clearTimeout(grace);
    await this.writes.close();
    this.store.close();
    this.#log.info('node stopped');
  }

  #kvService(): KvService {
    const store = this.store;
    return {
      nodeId: store.nodeId,
      get: (key) => store.get(key),
      list: (prefix, after, limit) => store.list(prefix, after, limit),
      write: async (key, valueJson): Promise<MutationResult> => {
        const [result] = await this.writes.submit([{ kind: 'local', key, valueJson }]);
        return result!;
      },
      storeHash: () => store.digest.root(),
    };
  }

  #listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        if (error.code === 'EADDRINUSE') {
          reject(
            new ConfigError(
              `--port ${this.#config.port} is already in use on ${this.#config.host}`,
            ),
          );
        } else if (
          error.code === 'EADDRNOTAVAIL' ||
          error.code === 'ENOTFOUND' ||
          error.code === 'EACCES'
        ) {
          reject(
            new ConfigError(
              `cannot listen on ${this.#config.host}:${this.#config.port} (${error.code})`,
            ),
          );
        } else reject(error);
      };
      this.#server.once('error', onError);
      this.#server.listen(this.#config.port, this.#config.host, () => {
        this.#server.off('error', onError);
        resolve();
      });
    });
  }
}
