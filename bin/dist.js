/**
 * Whether dist/ holds a build of the sources as they are now. `npm run build`
 * (bin/build.js) writes dist/build.json last, with a fingerprint of every
 * file the build reads (src/, workers/, the tsconfigs); the bin runs dist/
 * only while that fingerprint still matches, so an edited checkout never runs
 * stale code: it falls back to the sources through tsx.
 *
 * Plain JavaScript on purpose: the bin reads it before it knows whether tsx
 * is needed. Hashing the ~100 files (~0.7 MB) takes a few milliseconds.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const STAMP_FILE = 'build.json';
/** What the compiled node's entry point is, inside the out dir. */
export const MAIN_FILE = join('src', 'main.js');
const SOURCE_DIRS = ['src', 'workers'];
const SOURCE_FILES = ['tsconfig.json', 'tsconfig.build.json'];
/** A bound on the walk: far above the ~100 files the sources have. */
const SOURCE_FILES_MAX = 5_000;

/** Relative paths of every source file, sorted (a missing dir or file is skipped). */
export function sourceFiles(rootDir) {
  const found = [];
  const walk = (relativeDir) => {
    let entries;
    try {
      entries = readdirSync(join(rootDir, relativeDir), { withFileTypes: true });
    } catch (error) {
      // An installed package may lack a dir; an absent dir simply has no files.
      if (error.code === 'ENOENT') return;
      throw error;
    }
    for (const entry of entries) {
      const path = join(relativeDir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) found.push(path);
      if (found.length > SOURCE_FILES_MAX) throw new Error(`more than ${SOURCE_FILES_MAX} files`);
    }
  };
  for (const dir of SOURCE_DIRS) walk(dir);
  for (const file of SOURCE_FILES) if (existsSync(join(rootDir, file))) found.push(file);
  return found.sort();
}

/** SHA-256 over every source file's path and content: equal exactly when the build's input is. */
export function sourceFingerprint(rootDir) {
  const hash = createHash('sha256');
  for (const file of sourceFiles(rootDir)) {
    const content = readFileSync(join(rootDir, file));
    hash.update(`${file}\0${content.length}\0`);
    hash.update(content);
  }
  return hash.digest('hex');
}

/** The stamp of the build in `outDir`, or undefined when there is none (absent, partial, unreadable). */
export function readStamp(outDir) {
  try {
    const stamp = JSON.parse(readFileSync(join(outDir, STAMP_FILE), 'utf8'));
    return typeof stamp?.sources === 'string' ? stamp : undefined;
  } catch (error) {
    if (error.code === 'ENOENT' || error instanceof SyntaxError) return undefined;
    throw error;
  }
}

/**
 * `{ current: true, mainFile }` when `outDir` holds a build of the sources of
 * `rootDir` as they are; otherwise `{ current: false, reason }` ('absent' or 'stale').
 */
export function distState(rootDir, outDir = join(rootDir, 'dist')) {
  const stamp = readStamp(outDir);
  if (stamp === undefined) return { current: false, reason: 'absent' };
  if (stamp.sources !== sourceFingerprint(rootDir)) return { current: false, reason: 'stale' };
  return { current: true, mainFile: join(outDir, MAIN_FILE) };
}
