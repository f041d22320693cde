/**
 * The peerkv cases, run in this order after the ceilings (bench/cases/ceiling.ts).
 * To add one: write bench/cases/<name>.ts exporting a BenchCase
 * (`{ name, run: (ctx) => Promise<CaseResult[]> }`) and list it here.
 *
 * - single-node: writes, reads, a 90/10 mix, and the concurrency sweep
 *   (concurrency.ts) on one node;
 * - cluster: a 3-node cluster grown through the store sizes: cluster write
 *   rate and replication lag, scaling with store size (scaling.ts), and
 *   recovery of a peer that missed writes or was wiped (recovery.ts).
 */
import type { BenchCase } from '../lib/bench-context.ts';
import { clusterCase } from './cluster.ts';
import { singleNodeCase } from './single-node.ts';

export const benchCases: readonly BenchCase[] = [singleNodeCase, clusterCase];
