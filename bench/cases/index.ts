/**
 * The peerkv cases, run in this order after the ceilings (bench/cases/ceiling.ts).
 * To add one: write bench/cases/<name>.ts exporting a BenchCase
 * (`{ name, run: (ctx) => Promise<CaseResult[]> }`) and list it here.
 */
import type { BenchCase } from '../lib/bench-context.ts';

export const benchCases: readonly BenchCase[] = [];
