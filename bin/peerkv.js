#!/usr/bin/env node
// Runs peerkv from its TypeScript sources through tsx (no build step); the
// pool workers and cluster children load the same way.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
