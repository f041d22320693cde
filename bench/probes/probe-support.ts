/** What the one-off probes under bench/probes/ share. */
import { createServer } from 'node:net';

/** A loopback port free right now (the kernel picks it; the probe binds it next). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}
