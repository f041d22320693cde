/** `peerkv/client`: a typed client for peerkv nodes, with failover across them. */
export type { BackupOptions, BackupResult } from './backup.ts';
export { type CallOptions, type ClientOptions, createClient, PeerkvClient } from './client.ts';
export {
  type AttemptRecord,
  PeerkvAbortError,
  PeerkvArgumentError,
  PeerkvBadAnswerError,
  PeerkvClientError,
  PeerkvResponseError,
  PeerkvTimeoutError,
  PeerkvUnavailableError,
} from './errors.ts';
export type * from './types.ts';
