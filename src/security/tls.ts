/**
 * TLS material: the node's certificate and key (served on its port, and
 * presented to peers it calls), and the CA it trusts for peers at https://
 * URLs and, with mutual TLS, for the client certificates of peers calling it.
 * Read at start-up and again on SIGHUP; every mistake is a ConfigError.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { ConfigError } from '../errors.ts';
import { buildConnector, type Connector } from '../replication/undici-core.ts';

/** Where the TLS files are. */
export interface TlsSources {
  readonly certFile: string | null;
  readonly keyFile: string | null;
  readonly caFile: string | null;
  /** Mutual TLS: ask callers for a certificate; peer routes need one the CA signed. */
  readonly verifyPeers: boolean;
}

export interface TlsMaterial {
  /** The node's own certificate chain and key; null: plain HTTP. */
  readonly cert: Buffer | null;
  readonly key: Buffer | null;
  /** The CA for peers (outgoing https and incoming client certificates); null: the system CAs. */
  readonly ca: Buffer | null;
}

export const NO_TLS: TlsSources = {
  certFile: null,
  keyFile: null,
  caFile: null,
  verifyPeers: false,
};

export function loadTls(sources: TlsSources): TlsMaterial {
  const cert = readPem(sources.certFile, '--tls-cert');
  const key = readPem(sources.keyFile, '--tls-key');
  const ca = readPem(sources.caFile, '--tls-ca');
  try {
    // Fails on a malformed PEM, or a key that does not match the certificate.
    createSecureContext({ cert: cert ?? undefined, key: key ?? undefined, ca: ca ?? undefined });
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigError(`--tls-cert/--tls-key/--tls-ca cannot be used (${reason})`);
  }
  return { cert, key, ca };
}

export interface ServerTlsOptions {
  readonly cert: Buffer | undefined;
  readonly key: Buffer | undefined;
  readonly ca: Buffer | undefined;
  readonly requestCert: boolean;
  readonly rejectUnauthorized: boolean;
}

/** Server options for node:https (createServer, and setSecureContext on reload). */
export function serverTlsOptions(material: TlsMaterial, sources: TlsSources): ServerTlsOptions {
  return {
    cert: material.cert ?? undefined,
    key: material.key ?? undefined,
    ca: material.ca ?? undefined,
    // Ask for a client certificate but let clients without one in: client routes do not need
    // one; peer routes check `socket.authorized` (src/security/authorizer.ts).
    requestCert: sources.verifyPeers,
    rejectUnauthorized: false,
  };
}

/** The undici connector for calls to peers: trusts the CA, presents our certificate. */
export function peerConnector(material: TlsMaterial, timeoutMs: number): Connector {
  return buildConnector({
    timeout: timeoutMs,
    ca: material.ca ?? undefined,
    cert: material.cert ?? undefined,
    key: material.key ?? undefined,
    rejectUnauthorized: true,
  });
}

function readPem(path: string | null, flag: string): Buffer | null {
  if (path === null) return null;
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(`${flag} ${path} cannot be read (${code})`);
  }
}
