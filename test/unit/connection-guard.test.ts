// Goal: the connection guard's per-address counts follow connections that come and go; method: a
// node:http server on port 0 behind guardConnections (2 per address, 8 in all), sockets from
// other loopback addresses opened, closed and opened again, each asked for an answer.
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { guardConnections } from '../../src/http/connection-guard.ts';

// Answers once the whole request (body included) is in.
const server = http.createServer((req, res) => req.resume().once('end', () => res.end('ok')));
const guard = guardConnections(server, {
  connectionsMax: 8,
  perClientMax: 2,
  peerSlots: 2,
  peerAddresses: new Set(['127.0.0.1']),
});
let port = 0;

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

/** Opens a keep-alive connection from `localAddress` and asks once; resolves with the answer. */
function ask(localAddress: string): Promise<{ socket: net.Socket; answer: string }> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    let answer = '';
    const done = () => resolve({ socket, answer });
    socket.on('connect', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString();
      if (answer.endsWith('ok')) done();
    });
    socket.on('error', done);
    socket.on('close', done);
  });
}

async function closeAll(sockets: net.Socket[]): Promise<void> {
  await Promise.all(
    sockets.map((socket) =>
      socket.closed ? undefined : new Promise((resolve) => socket.once('close', resolve).destroy()),
    ),
  );
  // Let the server see the closes.
  await new Promise((resolve) => setTimeout(resolve, 100));
}

test('an address at its cap is refused with 503; after its connections close it gets in again', async () => {
  const first = await Promise.all([ask('127.0.0.5'), ask('127.0.0.5')]);
  assert.ok(first.every(({ answer }) => answer.startsWith('HTTP/1.1 200')));
  // Both are idle keep-alive connections now: a third from the address replaces the oldest.
  const third = await ask('127.0.0.5');
  assert.match(third.answer, /^HTTP\/1\.1 200/);
  await closeAll([...first.map(({ socket }) => socket), third.socket]);
  for (let round = 0; round < 3; round += 1) {
    const again = await Promise.all([ask('127.0.0.5'), ask('127.0.0.5')]);
    assert.ok(
      again.every(({ answer }) => answer.startsWith('HTTP/1.1 200')),
      `round ${round}: ${again.map(({ answer }) => answer.slice(0, 40)).join(' | ')}`,
    );
    await closeAll(again.map(({ socket }) => socket));
  }
  assert.equal(guard.refused, 0, 'an eviction is not a refusal');
});

test('busy connections at the cap: the next one from that address gets a 503 JSON answer', async () => {
  // Two requests whose bodies never come: busy, not evictable.
  const busy = ['127.0.0.6', '127.0.0.6'].map((localAddress) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    socket.on('connect', () =>
      socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n'),
    );
    socket.on('error', () => socket.destroy());
    return socket;
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const refused = await ask('127.0.0.6');
  assert.match(refused.answer, /^HTTP\/1\.1 503 /);
  assert.match(refused.answer, /"code":"OVERLOADED"/);
  const other = await ask('127.0.0.7');
  assert.match(other.answer, /^HTTP\/1\.1 200/);
  await closeAll([...busy, refused.socket, other.socket]);
});
