#!/usr/bin/env node
// Runs peerkv: the compiled JavaScript in dist/ when it is a build of the sources
// as they are now (`npm ci` and `npm run build` make it; see bin/dist.js), else the
// TypeScript sources through tsx (no build, or sources edited since it: never stale
// code). Nothing is printed about the choice (client commands own their stderr); a
// node logs it in its "node started" line (`code`). Pool workers and `peerkv
// cluster`'s nodes load their code the same way (src/code-location.ts).
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { distState } from './dist.js';

const dist = distState(join(dirname(fileURLToPath(import.meta.url)), '..'));
if (dist.current) {
  await import(pathToFileURL(dist.mainFile).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
