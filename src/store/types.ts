import type { Version } from '../version.ts';

/** One key's replicated state: its value as JSON text (null: deleted) and version. */
export interface Entry {
  readonly key: string;
  readonly valueJson: string | null;
  readonly version: Version;
}

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
    }
  | { readonly kind: 'remote'; readonly entry: Entry; readonly sourceNodeId: string };

export interface MutationResult {
  /** False when a remote entry lost the merge (we already had a newer version). */
  readonly applied: boolean;
  /** The version the key holds after the mutation. */
  readonly version: Version;
  /** Whether the key held a live value before the mutation. */
  readonly existed: boolean;
}

/** A change read from the local change sequence, for a peer. */
export interface Change extends Entry {
  readonly seq: number;
  readonly sourceNodeId: string;
}
