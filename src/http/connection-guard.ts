/**
 * Bounds concurrent connections without letting slow clients starve the
 * node. At the bound, a new connection evicts the oldest connection that has
 * not yet sent a complete request head (a slowloris holds exactly those);
 * only when every connection is busy or idle-between-requests is the new one
 * refused. Header and request timeouts (src/http/app.ts) close the rest.
 */
import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';

export interface ConnectionGuard {
  /** Closes every connection that has not sent a complete request head (at shutdown). */
  closeWaiting(): void;
}

export function guardConnections(
  server: Server | HttpsServer,
  /** `secureConnection` for a TLS server: its requests' sockets are the TLS sockets. */
  connectionEvent: 'connection' | 'secureConnection',
  connectionsMax: number,
  onRefused: () => void = () => {},
): ConnectionGuard {
  // Sockets in arrival order; a Set keeps insertion order and O(1) removal.
  const waitingForHead = new Set<Socket>();
  let open = 0;
  server.on(connectionEvent, (socket: Socket) => {
    if (open >= connectionsMax) {
      const oldest = waitingForHead.values().next().value;
      onRefused();
      if (oldest === undefined) {
        socket.destroy();
        return;
      }
      waitingForHead.delete(oldest);
      oldest.destroy();
    }
    open += 1;
    waitingForHead.add(socket);
    socket.once('close', () => {
      open -= 1;
      waitingForHead.delete(socket);
    });
  });
  server.on('request', (req) => {
    waitingForHead.delete(req.socket);
  });
  return {
    closeWaiting: () => {
      for (const socket of waitingForHead) socket.destroy();
      waitingForHead.clear();
    },
  };
}
