/**
 * The cluster's members as this node knows them, and how that knowledge
 * converges. Each member URL has one row: `member` or `removed`, and the
 * version of the change that set it (the node's hybrid clock and node id, so
 * versions are unique and ordered like entry versions). Merging two lists
 * keeps, for every URL, the row with the higher version: idempotent,
 * commutative and associative, so nodes that exchange lists in any order, any
 * number of times, end with the same list — also a node that was down when a
 * change was made, once it exchanges with any node that saw it.
 *
 * URLs from `--peers` enter with the lowest version there is, so any change
 * made at runtime wins over them, and restarting a node with its old
 * `--peers` does not undo a removal.
 *
 * This class keeps the rows, persists them, and reports which peers to start
 * and stop; exchanging lists is the gossip's job (./gossip.ts).
 */
import { createHash } from 'node:crypto';
import { PeerkvError } from '../errors.ts';
import type { MemberRow } from '../store/types.ts';
import { NODE_ID_PATTERN, parseVersion } from '../version.ts';

/** The version of a member that came from `--peers`: below every version a clock issues. */
export const SEED_VERSION = '00000000000001-0000000000000000';

/** At most this many rows in a list (a peer's list longer than that is refused). */
export const MEMBERS_MAX = 1_000;
const URL_CHARS_MAX = 2_048;

export interface MemberStore {
  members(): MemberRow[];
  saveMembers(rows: readonly MemberRow[]): void;
}

export interface MembershipDeps {
  readonly store: MemberStore;
  /** This node's own URL as members reach it, and its node id. */
  readonly selfUrl: string;
  readonly selfNodeId: string;
  /** A fresh version for a change made here (the node's hybrid clock). */
  readonly newVersion: () => string;
}

/** What a change did to the peers this node should replicate with. */
export interface MembershipChange {
  readonly joined: readonly string[];
  readonly left: readonly string[];
  /** This node itself was removed (it should stop replicating with everyone). */
  readonly selfRemoved: boolean;
}

const NO_CHANGE: MembershipChange = { joined: [], left: [], selfRemoved: false };

export class Membership {
  readonly #deps: MembershipDeps;
  readonly #rows = new Map<string, MemberRow>();

  constructor(deps: MembershipDeps) {
    this.#deps = deps;
    for (const row of deps.store.members()) this.#rows.set(row.url, row);
  }

  /** Adds the `--peers` URLs this node has no row for, at the lowest version. */
  seed(urls: readonly string[]): void {
    const added: MemberRow[] = [];
    for (const url of urls) {
      if (this.#rows.has(url)) continue;
      const row: MemberRow = { url, state: 'member', version: SEED_VERSION, nodeId: null };
      this.#rows.set(url, row);
      added.push(row);
    }
    if (added.length > 0) this.#deps.store.saveMembers(added);
  }

  /** Every row, by URL. */
  rows(): MemberRow[] {
    return [...this.#rows.values()].sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
  }

  /** The URLs of the other members: the peers this node replicates with. */
  peerUrls(): string[] {
    if (this.selfRemoved) return [];
    return this.rows()
      .filter((row) => row.state === 'member' && !this.#isSelf(row))
      .map((row) => row.url);
  }

  /** Whether the latest change to this node's own row removed it. */
  get selfRemoved(): boolean {
    return this.rows().some((row) => row.state === 'removed' && this.#isSelf(row));
  }

  /** Whether this node's own URL is a member here. */
  get selfListed(): boolean {
    return this.#rows.get(this.#deps.selfUrl)?.state === 'member';
  }

  /** Identifies the list: equal digests, equal lists (what gossip compares). */
  digest(): string {
    const hash = createHash('sha256');
    for (const row of this.rows()) hash.update(`${row.url} ${row.state} ${row.version}\n`);
    return hash.digest('hex').slice(0, 16);
  }

  /** Makes `url` a member (a no-op when it is one). */
  add(url: string): MembershipChange {
    const current = this.#rows.get(url);
    if (current?.state === 'member') return NO_CHANGE;
    return this.#apply([
      { url, state: 'member', version: this.#deps.newVersion(), nodeId: current?.nodeId ?? null },
    ]);
  }

  /** Removes the member named by node id or URL; NOT_FOUND when there is none. */
  remove(id: string): MembershipChange {
    const row = this.find(id);
    if (row === undefined || row.state !== 'member') {
      throw new PeerkvError('NOT_FOUND', `no member ${id.slice(0, 200)}`);
    }
    if (this.#isSelf(row)) {
      throw new PeerkvError(
        'CANNOT_REMOVE_SELF',
        'a node cannot remove itself: ask another member to remove it',
      );
    }
    return this.#apply([{ ...row, state: 'removed', version: this.#deps.newVersion() }]);
  }

  /** The row of a member by node id or URL. */
  find(id: string): MemberRow | undefined {
    if (NODE_ID_PATTERN.test(id)) {
      if (id === this.#deps.selfNodeId)
        return this.#rows.get(this.#deps.selfUrl) ?? selfRow(this.#deps);
      return this.rows().find((row) => row.nodeId === id);
    }
    return this.#rows.get(normaliseUrl(id, 'member'));
  }

  /** Folds in a list from another node: for each URL the higher version wins. */
  merge(incoming: readonly MemberRow[]): MembershipChange {
    const newer: MemberRow[] = [];
    for (const row of incoming) {
      const current = this.#rows.get(row.url);
      if (current === undefined || row.version > current.version) {
        newer.push({ ...row, nodeId: row.nodeId ?? current?.nodeId ?? null });
      } else if (
        row.version === current.version &&
        current.nodeId === null &&
        row.nodeId !== null
      ) {
        this.#rows.set(row.url, { ...current, nodeId: row.nodeId });
        this.#deps.store.saveMembers([this.#rows.get(row.url)!]);
      }
    }
    return newer.length === 0 ? NO_CHANGE : this.#apply(newer);
  }

  /** Records the node id a ping showed for a member's URL (local knowledge, no new version). */
  noteNodeId(url: string, nodeId: string): void {
    const row = this.#rows.get(url);
    if (row === undefined || row.nodeId === nodeId) return;
    const updated = { ...row, nodeId };
    this.#rows.set(url, updated);
    this.#deps.store.saveMembers([updated]);
  }

  #apply(rows: readonly MemberRow[]): MembershipChange {
    const before = new Set(this.peerUrls());
    const wasRemoved = this.selfRemoved;
    for (const row of rows) this.#rows.set(row.url, row);
    this.#deps.store.saveMembers(rows);
    const after = new Set(this.peerUrls());
    return {
      joined: [...after].filter((url) => !before.has(url)),
      left: [...before].filter((url) => !after.has(url)),
      selfRemoved: !wasRemoved && this.selfRemoved,
    };
  }

  #isSelf(row: MemberRow): boolean {
    return row.url === this.#deps.selfUrl || row.nodeId === this.#deps.selfNodeId;
  }
}

function selfRow(deps: MembershipDeps): MemberRow {
  return { url: deps.selfUrl, state: 'member', version: SEED_VERSION, nodeId: deps.selfNodeId };
}

/** A member URL as rows keep it: http(s), a host, no path, query or fragment; its origin. */
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

/** Validates a list of member rows from a peer (POST /sync/members) or its answer. */
export function parseMemberRows(value: unknown): MemberRow[] {
  const members = (value as { members?: unknown } | null)?.members;
  if (!Array.isArray(members)) throw new PeerkvError('BAD_REQUEST', 'members must be an array');
  if (members.length > MEMBERS_MAX) {
    throw new PeerkvError('BAD_REQUEST', `a member list holds at most ${MEMBERS_MAX} rows`);
  }
  return members.map((raw, index): MemberRow => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new PeerkvError('BAD_REQUEST', `member ${index} must be an object`);
    }
    const row = raw as Record<string, unknown>;
    const url = normaliseUrl(row.url, `member ${index} url`);
    if (row.state !== 'member' && row.state !== 'removed') {
      throw new PeerkvError('BAD_REQUEST', `member ${index} state must be member or removed`);
    }
    if (parseVersion(row.version) === undefined) {
      throw new PeerkvError('BAD_REQUEST', `member ${index} version is malformed`);
    }
    const nodeId = row.nodeId ?? null;
    if (nodeId !== null && (typeof nodeId !== 'string' || !NODE_ID_PATTERN.test(nodeId))) {
      throw new PeerkvError('BAD_REQUEST', `member ${index} nodeId must be 16 hex digits`);
    }
    return { url, state: row.state, version: row.version as string, nodeId };
  });
}
