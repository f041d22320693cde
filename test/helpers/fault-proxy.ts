// A TCP proxy for one directed peer link that a fault test can cut, heal, delay, blackhole, or make
// drop connections mid-request; randomness comes from an injected rng so a schedule replays.
import assert from 'node:assert/strict';
import net from 'node:net';

/** Returns a number in [0, 1), like Math.random. */
export type Rng = () => number;

const CONNECTIONS_MAX_DEFAULT = 1024;
const QUEUED_BYTES_MAX_DEFAULT = 4 * 1024 * 1024;
const DELAY_MS_MAX = 60_000;
const CLOSE_TIMEOUT_MS = 5_000;

export type FaultMode = 'pass' | 'cut' | 'blackhole' | 'closed';

export interface FaultProxyOptions {
  targetPort: number;
  targetHost?: string;
  /** Port to listen on; 0 (the default) picks a free one. Pass one from the same freePorts() call
   * as the nodes' ports so a proxy can never take a port a node is about to bind. */
  listenPort?: number;
  /** Connections held at once; more are reset on accept. */
  connectionsMax?: number;
  /** Bytes held per direction of a connection (delayed or blackholed) before its reader pauses. */
  queuedBytesMax?: number;
}

export interface FaultProxyStats {
  mode: FaultMode;
  delayMs: number;
  connectionsAccepted: number;
  connectionsActive: number;
  /** Reset on accept: the link was cut, or connectionsMax was reached. */
  connectionsRefused: number;
  /** Dropped after part of their first request chunk (setDropMidRequest). */
  connectionsDropped: number;
  bytesToTarget: number;
  bytesFromTarget: number;
  /** Bytes held right now across all connections (delayed or blackholed). */
  bytesQueued: number;
}

type Entry =
  | { kind: 'data'; chunk: Buffer; dueAt: number }
  | { kind: 'end' | 'reset' | 'drop'; dueAt: number };

interface RelayControl {
  delayMs(): number;
  frozen(): boolean;
  queuedBytesMax: number;
  onForwarded(bytes: number): void;
  /** Runs a 'reset' or 'drop' marker once everything queued before it has been written. */
  onMarker(kind: 'reset' | 'drop'): void;
}

/** One direction of a proxied connection: a time-ordered queue from `source` to `sink`. */
class Relay {
  private readonly queue: Entry[] = [];
  private queued = 0;
  private lastDueAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private awaitingDrain = false;
  private stopped = false;

  constructor(
    private readonly source: net.Socket,
    private readonly sink: net.Socket,
    private readonly control: RelayControl,
  ) {}

  /** Bytes waiting to be written (delayed, blackholed, or behind a full sink). */
  get queuedBytes(): number {
    return this.queued;
  }

  push(entry: { kind: 'data'; chunk: Buffer } | { kind: 'end' | 'reset' | 'drop' }): void {
    if (this.stopped) return;
    // Never earlier than the entry before it, so lowering the delay cannot reorder bytes.
    const dueAt = Math.max(performance.now() + this.control.delayMs(), this.lastDueAt);
    this.lastDueAt = dueAt;
    this.queue.push({ ...entry, dueAt });
    if (entry.kind === 'data') {
      this.queued += entry.chunk.length;
      if (this.queued >= this.control.queuedBytesMax) this.source.pause();
    }
    this.flush();
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped || this.awaitingDrain || this.control.frozen()) return;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const waitMs = head.dueAt - performance.now();
      if (waitMs > 0) {
        this.timer = setTimeout(() => this.flush(), waitMs);
        break;
      }
      this.queue.shift();
      if (head.kind !== 'data') {
        this.finish(head.kind);
        return;
      }
      this.queued -= head.chunk.length;
      this.control.onForwarded(head.chunk.length);
      if (!this.sink.write(head.chunk)) {
        this.awaitingDrain = true;
        this.sink.once('drain', () => {
          this.awaitingDrain = false;
          this.flush();
        });
        break;
      }
    }
    if (this.queued < this.control.queuedBytesMax / 2 && this.source.isPaused()) {
      this.source.resume();
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.queue.length = 0;
    this.queued = 0;
  }

  private finish(kind: 'end' | 'reset' | 'drop'): void {
    this.stop();
    if (kind === 'end') this.sink.end();
    else this.control.onMarker(kind);
  }
}

function resetSocket(socket: net.Socket): void {
  if (socket.destroyed) return;
  // resetAndDestroy sends RST, so the far side sees ECONNRESET at once rather than a clean close.
  socket.resetAndDestroy();
}

interface ConnectionHooks {
  control: Omit<RelayControl, 'onForwarded' | 'onMarker'>;
  onBytes(direction: 'toTarget' | 'fromTarget', bytes: number): void;
  onClosed(connection: ProxiedConnection): void;
  onDropped(): void;
  /** Fraction of the first request chunk to forward before dropping, or undefined. */
  dropFraction: (() => number) | undefined;
}

/** A client socket, its upstream socket, and the two relays between them. */
class ProxiedConnection {
  private readonly upstream: net.Socket;
  private readonly toTarget: Relay;
  private readonly fromTarget: Relay;
  private socketsOpen = 2;
  private closed = false;
  /** Set while a drop is armed; cleared (and further client bytes ignored) once it fired. */
  private dropFraction: (() => number) | undefined;
  private dropping = false;

  constructor(
    private readonly client: net.Socket,
    target: { host: string; port: number },
    private readonly hooks: ConnectionHooks,
  ) {
    this.upstream = net.connect({ ...target, allowHalfOpen: true });
    this.dropFraction = hooks.dropFraction;
    const relayControl = (direction: 'toTarget' | 'fromTarget'): RelayControl => ({
      ...hooks.control,
      onForwarded: (bytes) => hooks.onBytes(direction, bytes),
      onMarker: (kind) => (kind === 'drop' ? this.drop() : this.reset()),
    });
    this.toTarget = new Relay(client, this.upstream, relayControl('toTarget'));
    this.fromTarget = new Relay(this.upstream, client, relayControl('fromTarget'));
    this.wire(client, this.toTarget);
    this.wire(this.upstream, this.fromTarget);
  }

  queuedBytes(): number {
    return this.toTarget.queuedBytes + this.fromTarget.queuedBytes;
  }

  /** Resumes relays frozen by a blackhole. */
  kick(): void {
    this.toTarget.flush();
    this.fromTarget.flush();
  }

  reset(): void {
    this.toTarget.stop();
    this.fromTarget.stop();
    resetSocket(this.client);
    resetSocket(this.upstream);
  }

  private wire(socket: net.Socket, relay: Relay): void {
    socket.on('data', (chunk: Buffer) => {
      if (socket !== this.client) relay.push({ kind: 'data', chunk });
      else if (this.dropFraction !== undefined) this.startDrop(this.dropFraction, chunk);
      else if (!this.dropping) relay.push({ kind: 'data', chunk });
    });
    socket.on('end', () => relay.push({ kind: 'end' }));
    // An error on one side travels through the relay, so a blackhole holds it back like data.
    socket.on('error', () => relay.push({ kind: 'reset' }));
    socket.on('close', () => this.onSocketClosed());
  }

  /** Forwards a random prefix of the first request chunk, then the drop marker. */
  private startDrop(dropFraction: () => number, chunk: Buffer): void {
    const prefixBytes = Math.floor(dropFraction() * chunk.length);
    this.dropFraction = undefined;
    this.dropping = true;
    if (prefixBytes > 0) {
      this.toTarget.push({ kind: 'data', chunk: chunk.subarray(0, prefixBytes) });
    }
    this.toTarget.push({ kind: 'drop' });
  }

  /** The target sees part of a request then FIN; the client sees a reset. */
  private drop(): void {
    this.hooks.onDropped();
    this.fromTarget.stop();
    resetSocket(this.client);
    this.upstream.end(() => this.upstream.destroy());
  }

  private onSocketClosed(): void {
    this.socketsOpen -= 1;
    if (this.socketsOpen > 0 || this.closed) return;
    this.closed = true;
    this.toTarget.stop();
    this.fromTarget.stop();
    this.hooks.onClosed(this);
  }
}

/** A TCP proxy from a free 127.0.0.1 port to 127.0.0.1:targetPort, with injectable faults. */
export class FaultProxy {
  private readonly server: net.Server;
  private readonly connections = new Set<ProxiedConnection>();
  private readonly target: { host: string; port: number };
  private readonly connectionsMax: number;
  private readonly queuedBytesMax: number;
  private mode: FaultMode = 'pass';
  private delayMs = 0;
  private drop: { probability: number; rng: Rng } | undefined;
  private readonly requestedPort: number;
  private listenPort: number | undefined;
  private counters = {
    connectionsAccepted: 0,
    connectionsRefused: 0,
    connectionsDropped: 0,
    bytesToTarget: 0,
    bytesFromTarget: 0,
  };

  constructor(options: FaultProxyOptions) {
    assert.ok(Number.isInteger(options.targetPort) && options.targetPort > 0, 'bad targetPort');
    this.target = { host: options.targetHost ?? '127.0.0.1', port: options.targetPort };
    this.requestedPort = options.listenPort ?? 0;
    this.connectionsMax = options.connectionsMax ?? CONNECTIONS_MAX_DEFAULT;
    this.queuedBytesMax = options.queuedBytesMax ?? QUEUED_BYTES_MAX_DEFAULT;
    assert.ok(this.connectionsMax > 0 && this.queuedBytesMax > 0, 'limits must be positive');
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
  }

  get port(): number {
    assert.ok(this.listenPort !== undefined, 'FaultProxy not started');
    return this.listenPort;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<number> {
    assert.equal(this.listenPort, undefined, 'FaultProxy already started');
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.requestedPort, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address();
    assert.ok(address !== null && typeof address === 'object', 'proxy has no TCP address');
    this.listenPort = address.port;
    return address.port;
  }

  /** Resets every open connection and every new one until heal(). */
  cut(): void {
    this.setMode('cut');
    for (const connection of this.connections) connection.reset();
  }

  /** Forwards again; connections held by a blackhole resume where they stopped. */
  heal(): void {
    this.setMode('pass');
    for (const connection of this.connections) connection.kick();
  }

  /** Accepts connections but forwards nothing either way, open ones included, until heal(). */
  blackhole(): void {
    this.setMode('blackhole');
  }

  /** Delays every chunk forwarded from now on, in both directions, by `ms`. */
  setDelay(ms: number): void {
    assert.ok(Number.isInteger(ms) && ms >= 0 && ms <= DELAY_MS_MAX, `bad delay ${ms} ms`);
    this.delayMs = ms;
  }

  /** Each new connection, with this probability, is dropped after part of its first chunk. */
  setDropMidRequest(probability: number, rng: Rng): void {
    assert.ok(probability >= 0 && probability <= 1, `bad probability ${probability}`);
    this.drop = probability > 0 ? { probability, rng } : undefined;
  }

  stats(): FaultProxyStats {
    return {
      mode: this.mode,
      delayMs: this.delayMs,
      connectionsActive: this.connections.size,
      ...this.counters,
      bytesQueued: [...this.connections].reduce((sum, c) => sum + c.queuedBytes(), 0),
    };
  }

  async close(): Promise<void> {
    if (this.mode === 'closed') return;
    this.mode = 'closed';
    for (const connection of this.connections) connection.reset();
    if (this.listenPort === undefined) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`FaultProxy ${this.port} did not close in ${CLOSE_TIMEOUT_MS} ms`)),
        CLOSE_TIMEOUT_MS,
      );
      this.server.close((err) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      });
    });
  }

  private setMode(mode: 'pass' | 'cut' | 'blackhole'): void {
    assert.notEqual(this.mode, 'closed', 'FaultProxy is closed');
    this.mode = mode;
  }

  private accept(client: net.Socket): void {
    // A client error is part of the fault being simulated; each path below handles its own.
    client.on('error', () => {});
    const full = this.connections.size >= this.connectionsMax;
    if (this.mode === 'cut' || this.mode === 'closed' || full) {
      this.counters.connectionsRefused += 1;
      resetSocket(client);
      return;
    }
    this.counters.connectionsAccepted += 1;
    const connection = new ProxiedConnection(client, this.target, {
      control: {
        delayMs: () => this.delayMs,
        frozen: () => this.mode === 'blackhole',
        queuedBytesMax: this.queuedBytesMax,
      },
      onBytes: (direction, bytes) => {
        if (direction === 'toTarget') this.counters.bytesToTarget += bytes;
        else this.counters.bytesFromTarget += bytes;
      },
      onClosed: (closed) => this.connections.delete(closed),
      onDropped: () => {
        this.counters.connectionsDropped += 1;
      },
      dropFraction: this.drawDrop(),
    });
    this.connections.add(connection);
  }

  private drawDrop(): (() => number) | undefined {
    if (this.drop === undefined) return undefined;
    const { probability, rng } = this.drop;
    return rng() < probability ? rng : undefined;
  }
}

/** mulberry32: a small seeded generator, so a failing fault schedule can be replayed. */
export function createRng(seed: number): Rng {
  assert.ok(Number.isInteger(seed), 'seed must be an integer');
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
