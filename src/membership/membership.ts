/**
 * The changes made to the cluster's membership at runtime, and how they
 * converge. A member is a node id; each has one row: `member` or `removed`,
 * the URL the node advertised (or the operator gave), and the version of the
 * change that set it (the hybrid clock and node id of the node that made the
 * change, unique and ordered like entry versions). Merging two lists keeps,
 * for every node id, the row with the higher version: idempotent, commutative
 * and associative, so nodes that exchange lists in any order and any number
 * of times end with the same list, also a node that was down when a change
 * was made, once it exchanges with any node that saw it.
 *
 * Only runtime changes are rows. The peers a node is started with (`--peers`)
 * and the addresses it learnt when it joined are its own addresses for its
 * peers, never spread: two nodes may reach a third at different addresses.
 * A row is matched to those by node id, so removing a node stops every member
 * replicating with it however each one reaches it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { PeerkvError } from '../errors.ts';
import type { MemberRow } from '../store/types.ts';
import { formatVersion, NODE_ID_PATTERN, parseVersion } from '../version.ts';

/** At most this many rows in a list (a longer list from a peer is refused). */
export const MEMBERS_MAX = 1_000;
const URL_CHARS_MAX = 2_048;

export interface MemberStore {
  members(): MemberRow[];
  saveMembers(rows: readonly MemberRow[]): void;
}

export interface MembershipDeps {
  readonly store: MemberStore;
  readonly selfNodeId: string;
  /**
   * A fresh version for a change made here (the node's hybrid clock), ordering above `above`
   * (the row the change replaces) even when this node's clock is behind the node that made
   * that row: see `memberVersion`.
   */
  readonly newVersion: (above: string | undefined) => string;
}

export class Membership {
  readonly #deps: MembershipDeps;
  readonly #rows = new Map<string, MemberRow>();
  #revision = 0;

  constructor(deps: MembershipDeps) {
    this.#deps = deps;
    for (const row of deps.store.members()) this.#rows.set(row.nodeId, row);
  }

  /** Every row, by node id. */
  rows(): MemberRow[] {
    return [...this.#rows.values()].sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
  }

  row(nodeId: string): MemberRow | undefined {
    return this.#rows.get(nodeId);
  }

  /** Changes whenever a row does (for caches of the rows). */
  get revision(): number {
    return this.#revision;
  }

  /** Rows of members other than this node: peers to reach at the row's URL unless known. */
  others(): MemberRow[] {
    return this.rows().filter(
      (row) => row.state === 'member' && row.nodeId !== this.#deps.selfNodeId,
    );
  }

  isRemoved(nodeId: string): boolean {
    return this.#rows.get(nodeId)?.state === 'removed';
  }

  /** Whether the latest change to this node's own row removed it. */
  get selfRemoved(): boolean {
    return this.isRemoved(this.#deps.selfNodeId);
  }

  /** Identifies the list: equal digests, equal lists (what gossip compares). */
  digest(): string {
    const hash = createHash('sha256');
    for (const row of this.rows()) hash.update(`${row.nodeId} ${row.state} ${row.version}\n`);
    return hash.digest('hex').slice(0, 16);
  }

  /** Makes the node `nodeId` at `url` a member; false when it already was one there. */
  add(nodeId: string, url: string): boolean {
    const current = this.#rows.get(nodeId);
    if (current?.state === 'member' && current.url === url) return false;
    this.#save([{ nodeId, url, state: 'member', version: this.#versionAbove(current) }]);
    return true;
  }

  /** Removes the member `nodeId` (last known at `url`). */
  remove(nodeId: string, url: string): MemberRow {
    if (nodeId === this.#deps.selfNodeId) {
      throw new PeerkvError(
        'CANNOT_REMOVE_SELF',
        'a node cannot remove itself: ask another member to remove it',
      );
    }
    if (this.isRemoved(nodeId)) throw new PeerkvError('NOT_FOUND', `${nodeId} is not a member`);
    const current = this.#rows.get(nodeId);
    const row: MemberRow = { nodeId, url, state: 'removed', version: this.#versionAbove(current) };
    this.#save([row]);
    return row;
  }

  /** Folds in a list from another node: for each node id the higher version wins; true if it changed ours. */
  merge(incoming: readonly MemberRow[]): boolean {
    const newer = new Map<string, MemberRow>();
    for (const row of incoming) {
      const current = newer.get(row.nodeId) ?? this.#rows.get(row.nodeId);
      if (current === undefined || orderKey(row) > orderKey(current)) newer.set(row.nodeId, row);
    }
    if (newer.size > 0) this.#save([...newer.values()]);
    return newer.size > 0;
  }

  /** A version for a change that must win over `current` wherever the two meet. */
  #versionAbove(current: MemberRow | undefined): string {
    const version = this.#deps.newVersion(current?.version);
    assert.ok(
      current === undefined || orderKey({ ...current, version }) > orderKey(current),
      'a member change orders above the row it replaces',
    );
    return version;
  }

  #save(rows: readonly MemberRow[]): void {
    this.#revision += 1;
    for (const row of rows) this.#rows.set(row.nodeId, row);
    this.#deps.store.saveMembers(rows);
  }
}

/**
 * Rows compare by version; two rows under one version (a clock that reissued
 * a version after a restart) by their content, so every node keeps the same.
 */
function orderKey(row: MemberRow): string {
  return `${row.version} ${row.state} ${row.url}`;
}

/**
 * The version of a member change made on node `nodeId`: the clock's next timestamp, or, when
 * the row it replaces carries a later one (made on a node whose clock runs ahead), one above
 * that without moving the clock there (`HybridClock.after`). Without it an operator's add
 * back, made on a node behind the one that removed, lost to the removal once the lists met.
 */
export function memberVersion(
  clock: { after(floor: number): number },
  nodeId: string,
  above: string | undefined,
): string {
  const floor = above === undefined ? 0 : (parseVersion(above)?.timestamp ?? 0);
  return formatVersion({ timestamp: clock.after(floor), nodeId });
}

/** A member URL: http(s), a host, no path, query, fragment or credentials; its origin. */
export function normaliseUrl(text: unknown, what: string): string {
  if (typeof text !== 'string' || text.length === 0 || text.length > URL_CHARS_MAX) {
    throw new PeerkvError(
      'BAD_REQUEST',
      `${what} must be a URL of at most ${URL_CHARS_MAX} characters`,
    );
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new PeerkvError(
      'BAD_REQUEST',
      `${what} is not a URL (expected e.g. http://127.0.0.1:8004)`,
    );
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    throw new PeerkvError('BAD_REQUEST', `${what} must be an http:// or https:// URL with a host`);
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    throw new PeerkvError('BAD_REQUEST', `${what} must be a base URL without a path`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new PeerkvError('BAD_REQUEST', `${what} must not carry credentials`);
  }
  return url.origin;
}

export interface MemberExchange {
  readonly members: MemberRow[];
  /** The answering node's own addresses for its peers (a joining node starts from them). */
  readonly peers: { readonly nodeId: string; readonly url: string }[];
}

/** Validates a member list from a peer (POST /sync/members) or its answer. */
export function parseMemberExchange(value: unknown): MemberExchange {
  const object = (value ?? {}) as { members?: unknown; peers?: unknown };
  const members = object.members;
  if (!Array.isArray(members)) throw new PeerkvError('BAD_REQUEST', 'members must be an array');
  if (members.length > MEMBERS_MAX) {
    throw new PeerkvError('BAD_REQUEST', `a member list holds at most ${MEMBERS_MAX} rows`);
  }
  const rows = members.map((raw, index): MemberRow => {
    const row = requireRow(raw, `member ${index}`);
    if (row.state !== 'member' && row.state !== 'removed') {
      throw new PeerkvError('BAD_REQUEST', `member ${index} state must be member or removed`);
    }
    if (parseVersion(row.version) === undefined) {
      throw new PeerkvError('BAD_REQUEST', `member ${index} version is malformed`);
    }
    return {
      nodeId: requireNodeId(row.nodeId, `member ${index}`),
      url: normaliseUrl(row.url, `member ${index} url`),
      state: row.state,
      version: row.version as string,
    };
  });
  const rawPeers = object.peers ?? [];
  if (!Array.isArray(rawPeers) || rawPeers.length > MEMBERS_MAX) {
    throw new PeerkvError('BAD_REQUEST', `peers must be an array of at most ${MEMBERS_MAX}`);
  }
  const peers = rawPeers.map((raw, index) => {
    const peer = requireRow(raw, `peer ${index}`);
    return {
      nodeId: requireNodeId(peer.nodeId, `peer ${index}`),
      url: normaliseUrl(peer.url, `peer ${index} url`),
    };
  });
  return { members: rows, peers };
}

function requireRow(raw: unknown, what: string): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new PeerkvError('BAD_REQUEST', `${what} must be an object`);
  }
  return raw as Record<string, unknown>;
}

function requireNodeId(value: unknown, what: string): string {
  if (typeof value !== 'string' || !NODE_ID_PATTERN.test(value)) {
    throw new PeerkvError('BAD_REQUEST', `${what} nodeId must be 16 hex digits`);
  }
  return value;
}
