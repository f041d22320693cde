// The simulator's randomness: one seeded generator per concern (schedule, network, each node),
// split from the seed, so adding a draw in one place does not shift every other.
import { createRng, type Rng } from '../helpers/fault-proxy.ts';

export type { Rng };

/** A generator for one named stream of a seed. */
export function stream(seed: number, name: string): Rng {
  let hash = 2166136261;
  for (const char of `${name}\u0000${seed}`) {
    hash ^= char.codePointAt(0)!;
    hash = Math.imul(hash, 16777619) >>> 0;
  }
  return createRng((hash ^ seed) >>> 0);
}

export function intBetween(rng: Rng, min: number, max: number): number {
  return min + Math.floor(rng() * (max - min + 1));
}

export function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)]!;
}

export function chance(rng: Rng, probability: number): boolean {
  return rng() < probability;
}
