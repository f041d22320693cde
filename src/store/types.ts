import type { Version } from '../version.ts';

/**
 * One key's replicated state: its value as JSON text (null: deleted or expired)
 * and version. `expiresAt` (wall-clock ms) makes the entry read as absent from
 * that moment on; it is part of the replicated content. Once the expiry sweep
 * has dropped the value, `valueHash` keeps the digest of the value it had, so
 * the entry hashes the same before and after the sweep, on every node.
 */
export interface Entry {
  readonly key: string;
  readonly valueJson: string | null;
  readonly version: Version;
  readonly expiresAt?: number | null;
  readonly valueHash?: string | null;
}

/** A precondition of a local write, checked in the transaction that writes it. */
export type Condition =
  | { readonly kind: 'match'; readonly version: Version }
  | { readonly kind: 'exists' }
  | { readonly kind: 'absent' };

/** A change for the writer: a local put/delete, or an entry merged from a peer. */
export type Mutation =
  | {
      readonly kind: 'local';
      readonly key: string;
      readonly valueJson: string | null;
      /**
       * For a delete of a key the store has never held: write a tombstone
       * (the default) or nothing. Only a node without peers may skip it; in a
       * cluster a write to the key may still be on its way from a peer, and
       * the tombstone is what makes this later delete win over it.
       */
      readonly tombstoneIfAbsent?: boolean;
      readonly expiresAt?: number | null;
      readonly condition?: Condition;
    }
  | { readonly kind: 'remote'; readonly entry: Entry; readonly sourceNodeId: string }
  /** The expiry sweep: drop the value of the key if it still holds this expired version. */
  | { readonly kind: 'expire'; readonly key: string; readonly version: Version };

export interface MutationResult {
  /** False when a remote entry lost the merge, or a local write was refused. */
  readonly applied: boolean;
  /** The version the key holds after the mutation (the current one when refused). */
  readonly version: Version;
  /** Whether the key held a live value before the mutation (present, not expired). */
  readonly existed: boolean;
  /** Whether the row held a value at all before (an expired one not yet swept counts). */
  readonly valueBefore?: boolean;
  /**
   * Set when a local write was not made: `condition` (its own precondition
   * failed) or `aborted` (another op of its atomic batch failed); and when a
   * remote live entry was refused as `behind-horizon`: older than the
   * tombstone horizon and not held here, so it comes from a node or backup
   * older than what was removed (see src/tombstones/); `removed-member`: a
   * write of a removed member this node no longer takes from that source
   * (src/tombstones/removed-members.ts).
   */
  readonly refused?: 'condition' | 'aborted' | 'behind-horizon' | 'removed-member';
}

/** A run of mutations that commit together or not at all (an atomic batch). */
export interface AtomicGroup {
  readonly start: number;
  readonly count: number;
}

/** A change read from the local change sequence, for a peer. */
export interface Change extends Entry {
  readonly seq: number;
  readonly sourceNodeId: string;
  /** The last sequence number of the atomic batch this change belongs to, if any. */
  readonly batchEndSeq?: number | null;
}

/** A runtime change to the cluster's membership (src/membership/membership.ts). */
export interface MemberRow {
  readonly nodeId: string;
  /** The URL the node advertised when it joined, or the one an operator added it at. */
  readonly url: string;
  readonly state: 'member' | 'removed';
  /** The version of the change that set `state`: the higher version wins. */
  readonly version: string;
}
