// An operator's add (src/membership/cluster-members.ts) decides on the cluster's latest member
// list, not on what the node last heard. Three nodes wired in memory: A removes C while B is cut
// off, the links heal, and B is asked to add C back before any gossip round told it of the
// removal. B must first fetch the lists it can reach, see the removal, and write a row that
// wins over it; answering "already a member" would let the removal, once it arrives, undo the
// operator's add for good (seen as chaos seed 93151: the re-added node never learnt it).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { HybridClock } from '../../src/clock.ts';
import { limits } from '../../src/limits.ts';
import { ClusterMembers } from '../../src/membership/cluster-members.ts';
import { memberVersion, parseMemberExchange } from '../../src/membership/membership.ts';
import type { PeerTransport } from '../../src/replication/peer-transport.ts';
import type { MemberRow } from '../../src/store/types.ts';
import type { Peer } from '../../src/supervisor.ts';

const IDS = ['000000000000000a', '000000000000000b', '000000000000000c'] as const;
const urlOf = (index: number): string => `http://127.0.0.1:${9100 + index}`;
const indexOf = (url: string): number => Number(new URL(url).port) - 9100;

class Wiring {
  readonly nodes: ClusterMembers[] = [];
  readonly #cut = new Set<string>();
  /** Nodes whose member-list exchanges never answer (a member that drops packets). */
  readonly silent = new Set<number>();

  cut(a: number, b: number): void {
    this.#cut.add(`${a}-${b}`).add(`${b}-${a}`);
  }

  heal(): void {
    this.#cut.clear();
  }

  transport(from: number, url: string): PeerTransport {
    const to = indexOf(url);
    const reachable = () => {
      if (this.#cut.has(`${from}-${to}`)) throw new Error(`link n${from}-n${to} is cut`);
    };
    return {
      url,
      ping: async () => {
        reachable();
        return {
          nodeId: IDS[to]!,
          timeWallMs: Date.now(),
          sentAtWallMs: Date.now(),
          rttMs: 0,
          valueBytesMax: null,
          instanceId: null,
          clockHigh: null,
          ackReport: null,
        };
      },
      call: async (_method, path, body) => {
        reachable();
        assert.equal(path, '/sync/members');
        if (this.silent.has(to)) return new Promise<never>(() => {});
        const exchange = parseMemberExchange(JSON.parse(body ?? '{}'));
        return { json: this.nodes[to]!.service().merge(exchange) } as never;
      },
      close: async () => {},
    };
  }
}

function node(wiring: Wiring, index: number): ClusterMembers {
  const rows = new Map<string, MemberRow>();
  const clock = new HybridClock(() => Date.now());
  const peers: Peer[] = [];
  const others = [0, 1, 2].filter((i) => i !== index);
  const members = new ClusterMembers({
    store: {
      members: () => [...rows.values()],
      saveMembers: (changed) => {
        for (const row of changed) rows.set(row.nodeId, row);
      },
      peerAddresses: () => [],
      addPeerAddresses: () => {},
      dropPeerCursor: () => {},
      removedAddresses: () => new Map(),
      setRemovedAddress: () => {},
    },
    selfNodeId: IDS[index]!,
    selfUrl: urlOf(index),
    configuredPeers: others.map(urlOf),
    join: null,
    peers,
    // A peer the supervisor has pinged: up, its node id known.
    createPeer: (url) =>
      ({
        url,
        client: wiring.transport(index, url),
        sender: { stop: () => {}, peerNodeId: IDS[indexOf(url)]! },
        state: 'up',
        nodeId: IDS[indexOf(url)]!,
      }) as unknown as Peer,
    clientFor: (url) => wiring.transport(index, url),
    onPeerUrl: () => {},
    newVersion: (above) => memberVersion(clock, IDS[index]!, above),
    wallMs: () => Date.now(),
    gossipIntervalMs: 60_000,
    fullIntervalMs: 60_000,
    log: pino({ level: 'silent' }),
  });
  members.reconcile();
  return members;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

/** Runs `body` on three nodes wired in memory, and stops them after. */
async function withThreeNodes(body: (wiring: Wiring) => Promise<void>): Promise<void> {
  const wiring = new Wiring();
  for (let i = 0; i < 3; i += 1) wiring.nodes.push(node(wiring, i));
  try {
    await body(wiring);
  } finally {
    await Promise.all(wiring.nodes.map((members) => members.stop()));
  }
}

test('an add made on a node that has not heard of a removal yet still makes the node a member', () =>
  withThreeNodes(async (wiring) => {
    const [a, b, c] = wiring.nodes as [ClusterMembers, ClusterMembers, ClusterMembers];
    wiring.cut(0, 1);
    wiring.cut(1, 2);
    a.service().remove(IDS[2]);
    await settle(); // A's gossip round and its farewell to C
    assert.equal(a.membership.isRemoved(IDS[2]), true);
    assert.equal(c.membership.selfRemoved, true, 'C was told it was removed');
    assert.equal(b.membership.isRemoved(IDS[2]), false, 'B, cut off, has not heard');

    wiring.heal();
    const answer = await b.service().add(urlOf(2));
    assert.deepEqual(answer, { url: urlOf(2), nodeId: IDS[2], added: true });

    // Gossip rounds everywhere: every list ends with C a member, C included.
    for (let round = 0; round < 3; round += 1) {
      for (const members of wiring.nodes) await members.gossip.tick();
    }
    for (const [i, members] of wiring.nodes.entries()) {
      assert.equal(members.membership.isRemoved(IDS[2]), false, `n${i} holds C as a member`);
    }
    assert.equal(c.membership.selfRemoved, false);
  }));

test('an add of a node every reachable list holds as a member answers added: false and writes nothing', () =>
  withThreeNodes(async (wiring) => {
    const b = wiring.nodes[1]!;
    const answer = await b.service().add(urlOf(2));
    assert.deepEqual(answer, { url: urlOf(2), nodeId: IDS[2], added: false });
    assert.deepEqual(b.membership.rows(), []);
  }));

test('a member that never answers holds the add for at most memberAddRefreshMsMax', () =>
  withThreeNodes(async (wiring) => {
    const b = wiring.nodes[1]!;
    // The wait's timer is unref'd (a node's server keeps its loop alive); here the test does.
    const keepAlive = setInterval(() => {}, 1_000);
    try {
      wiring.silent.add(0);
      const startMs = performance.now();
      const answer = await b.service().add(urlOf(2));
      const tookMs = performance.now() - startMs;
      assert.equal(answer.added, false);
      assert.ok(tookMs >= limits.memberAddRefreshMsMax - 50, `waited ${tookMs} ms for the lists`);
      assert.ok(tookMs < limits.memberAddRefreshMsMax + 1_000, `gave up after ${tookMs} ms`);
    } finally {
      clearInterval(keepAlive);
    }
  }));
