/**
 * The peerkv cases, run in this order after the ceilings (bench/cases/ceiling.ts).
 * To add one: write bench/cases/<name>.ts exporting a BenchCase
 * (`{ name, run: (ctx) => Promise<CaseResult[]> }`) and list it here.
 */
import type { BenchCase } from '../lib/bench-context.ts';
import { clusterCase } from './cluster.ts';
import { concurrencyCase } from './concurrency.ts';
import { scalingCase } from './scaling.ts';
import { singleNodeCase } from './single-node.ts';

export const benchCases: readonly BenchCase[] = [
  singleNodeCase,
  concurrencyCase,
  clusterCase,
  scalingCase,
];
