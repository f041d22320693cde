#!/usr/bin/env node
/**
 * `npm run build`: compiles src/ and workers/ (tsconfig.build.json) to
 * JavaScript in dist/ (the node the bin runs, and the `peerkv/client`
 * package export), copies the files tsc does not emit (the dashboard's
 * html/css/js), and writes dist/build.json last (bin/dist.js).
 *
 *   node bin/build.js [--out-dir DIR] [--force] [--if-typescript]
 *
 * A build of the current sources by the same TypeScript is left as it is
 * (so `npm pack` never pulls dist/ from under a running compiled node);
 * --force rebuilds anyway. The new build is made in a temp dir beside the
 * out dir and swapped in whole. --if-typescript (the `prepare` script, run
 * by `npm ci` and `npm install`): without TypeScript (`npm ci --omit=dev`)
 * the build is skipped with a note, and the bin runs the sources through tsx.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import minimist from 'minimist';
import { readStamp, STAMP_FILE, sourceFiles, sourceFingerprint } from './dist.js';

const rootDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function say(line) {
  process.stdout.write(`peerkv build: ${line}\n`);
}

/** tsc's entry and TypeScript's version, or undefined when TypeScript is not installed. */
function findTypeScript() {
  try {
    return {
      tsc: require.resolve('typescript/bin/tsc'),
      version: require('typescript/package.json').version,
    };
  } catch (error) {
    if (error.code === 'MODULE_NOT_FOUND') return undefined;
    throw error;
  }
}

/** Compiles into `tempDir` and copies the assets there; returns tsc's exit code. */
function compile(tsc, tempDir) {
  const run = spawnSync(
    process.execPath,
    [tsc, '-p', join(rootDir, 'tsconfig.build.json'), '--outDir', tempDir],
    { cwd: rootDir, stdio: 'inherit' },
  );
  if (run.error) throw run.error;
  if (run.status !== 0) return run.status ?? 1;
  for (const file of sourceFiles(rootDir)) {
    if (file.endsWith('.ts') || !/^(src|workers)\//.test(file)) continue;
    mkdirSync(dirname(join(tempDir, file)), { recursive: true });
    cpSync(join(rootDir, file), join(tempDir, file));
  }
  return 0;
}

function main(argv) {
  const args = minimist(argv, { boolean: ['force', 'if-typescript'], string: ['out-dir'] });
  const outDir = resolve(rootDir, args['out-dir'] ?? 'dist');
  const typescript = findTypeScript();
  if (typescript === undefined) {
    if (!args['if-typescript']) throw new Error('TypeScript is not installed (npm ci installs it)');
    say('TypeScript is not installed; skipped (peerkv runs from its sources through tsx)');
    return 0;
  }
  // Taken before tsc reads the files: a source edited during the build leaves the build stale.
  const sources = sourceFingerprint(rootDir);
  const stamp = readStamp(outDir);
  if (!args.force && stamp?.sources === sources && stamp.typescript === typescript.version) {
    say(`${outDir} is current`);
    return 0;
  }
  const startedMs = Date.now();
  const tempDir = `${outDir}.tmp-${process.pid}`;
  rmSync(tempDir, { recursive: true, force: true });
  try {
    const status = compile(typescript.tsc, tempDir);
    if (status !== 0) return status;
    const builtAt = new Date().toISOString();
    const stampText = `${JSON.stringify({ sources, typescript: typescript.version, builtAt })}\n`;
    writeFileSync(join(tempDir, STAMP_FILE), stampText);
    rmSync(outDir, { recursive: true, force: true });
    renameSync(tempDir, outDir);
  } finally {
    rmSync(tempDir, { recursive: true, force: true });
  }
  say(`built ${outDir} in ${((Date.now() - startedMs) / 1000).toFixed(1)} s`);
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`peerkv build: ${error instanceof Error ? error.message : error}\n`);
  process.exitCode = 1;
}
