/**
 * Bounds concurrent connections without letting greedy or slow clients lock
 * others out:
 * - at the bound, a new connection evicts the oldest connection that has
 *   waited over a second without sending a complete request head (a slowloris
 *   holds exactly those), else the connection idle the longest between
 *   keep-alive requests (a client never evicts a peer's); only when every
 *   connection is busy with a request (or fresh) is the new one refused;
 * - one client address holds at most `perClientMax` connections; at its cap,
 *   it makes room only from its own idle ones or those that waited over a
 *   second for a request head, else the new connection is refused;
 * - the last `peerSlots` slots are kept for connections from the addresses of
 *   the configured peers (which the per-client cap does not count), so
 *   replication and resync still get in when clients fill the rest.
 * A refused connection gets a 503 JSON answer and is closed. Header, request
 * and inactivity timeouts (src/http/app.ts) close the rest.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';

export interface ConnectionGuardOptions {
  /** `secureConnection` for a TLS server: its requests' sockets are the TLS sockets. */
  readonly connectionEvent?: 'connection' | 'secureConnection';
  readonly connectionsMax: number;
  readonly perClientMax: number;
  /** Slots only peers' addresses may take. */
  readonly peerSlots: number;
  /** IP addresses of the configured peers. */
  readonly peerAddresses: ReadonlySet<string>;
  /** Called for every connection refused or evicted (for the rejection metric). */
  readonly onRefused?: () => void;
}

export interface ConnectionGuard {
  /** Closes every connection that has not sent a complete request head (at shutdown). */
  closeWaiting(): void;
  /** Connections refused so far (at the bound or over the per-client cap). */
  readonly refused: number;
}

const REFUSED_LINGER_MS = 250;
/** A connection this young without a request head is not evicted (it is about to send it). */
const HEAD_GRACE_MS = 1_000;

export function guardConnections(
  server: Server | HttpsServer,
  options: ConnectionGuardOptions,
): ConnectionGuard {
  // Sets keep insertion order and give O(1) removal: the first is the oldest.
  const waitingForHead = new Set<Socket>();
  const idle = new Set<Socket>();
  const byAddress = new Map<string, number>();
  const connectedAt = new WeakMap<Socket, number>();
  // Kept from the start: a destroyed socket no longer knows its remote address.
  const addressOf = new WeakMap<Socket, string>();
  let open = 0;
  let refused = 0;
  const refuse = (socket: Socket, message: string): void => {
    refused += 1;
    options.onRefused?.();
    refuseSocket(socket, message);
  };
  server.on(options.connectionEvent ?? 'connection', (socket: Socket) => {
    const address = clientAddress(socket);
    const peer = options.peerAddresses.has(address);
    const held = byAddress.get(address) ?? 0;
    if (!peer && held >= options.perClientMax) {
      // At its cap, an address makes room only from its own connections that are idle between
      // requests or have waited too long for a request head (a fresh one is about to send it).
      const nowMs = performance.now();
      const own = (candidate: Socket) => addressOf.get(candidate) === address;
      const stale = (candidate: Socket) =>
        own(candidate) && nowMs - (connectedAt.get(candidate) ?? nowMs) > HEAD_GRACE_MS;
      const victim = oldest(waitingForHead, stale) ?? oldest(idle, own);
      if (victim === undefined) {
        refuse(socket, 'too many connections from this address');
        return;
      }
      evict(victim);
    }
    const bound = peer ? options.connectionsMax : options.connectionsMax - options.peerSlots;
    if (open >= bound) {
      // A client makes room only from clients' connections, never from a peer's.
      const nowMs = performance.now();
      const evictable = (candidate: Socket) =>
        peer || !options.peerAddresses.has(addressOf.get(candidate) ?? '');
      const stale = (candidate: Socket) =>
        evictable(candidate) && nowMs - (connectedAt.get(candidate) ?? nowMs) > HEAD_GRACE_MS;
      const victim = oldest(waitingForHead, stale) ?? oldest(idle, evictable);
      if (victim === undefined) {
        refuse(socket, 'too many connections');
        return;
      }
      evict(victim);
    }
    open += 1;
    byAddress.set(address, (byAddress.get(address) ?? 0) + 1);
    addressOf.set(socket, address);
    waitingForHead.add(socket);
    connectedAt.set(socket, performance.now());
    socket.once('close', () => {
      release(socket);
      forget(socket);
    });
  });
  const forget = (socket: Socket): void => {
    waitingForHead.delete(socket);
    idle.delete(socket);
  };
  /** Closes a connection to make room; its counts drop at once (its 'close' comes later). */
  const evict = (victim: Socket): void => {
    options.onRefused?.();
    forget(victim);
    release(victim);
    victim.destroy();
  };
  const released = new WeakSet<Socket>();
  const release = (socket: Socket): void => {
    if (released.has(socket)) return;
    released.add(socket);
    open -= 1;
    assert.ok(open >= 0, 'open connection count went negative');
    const address = addressOf.get(socket) ?? '';
    const left = (byAddress.get(address) ?? 1) - 1;
    if (left === 0) byAddress.delete(address);
    else byAddress.set(address, left);
  };
  server.on('request', (req, res) => {
    const socket: Socket = req.socket;
    forget(socket);
    res.once('finish', () => {
      // Between keep-alive requests: evictable, the longest idle first.
      if (!socket.destroyed && open > 0) idle.add(socket);
    });
  });
  return {
    closeWaiting: () => {
      for (const socket of waitingForHead) socket.destroy();
      waitingForHead.clear();
    },
    get refused() {
      return refused;
    },
  };
}

/** The oldest socket of the set, or the oldest that `matches` (a scan, at most the bound). */
function oldest(sockets: Set<Socket>, matches?: (socket: Socket) => boolean): Socket | undefined {
  if (!matches) return sockets.values().next().value;
  for (const socket of sockets) if (matches(socket)) return socket;
  return undefined;
}

/** The client's IP address, IPv4-mapped IPv6 addresses as plain IPv4. */
export function clientAddress(socket: Socket): string {
  const address = socket.remoteAddress ?? '';
  return address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
}

function refuseSocket(socket: Socket, message: string): void {
  socket.on('error', () => socket.destroy());
  // Read nothing from it: no request on a refused connection reaches a handler.
  socket.pause();
  const body = JSON.stringify({ error: message, code: 'OVERLOADED' });
  socket.end(
    `HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n${body}`,
  );
  // The client may never read or close: do not keep the socket past a short linger.
  setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
}
