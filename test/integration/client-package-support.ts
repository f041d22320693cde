// Builds a consumer project for the client-package test: a package.json that depends on the packed
// tarball, and a lock file that pins every dependency to the version this repo's own lock holds,
// so `npm ci --offline` installs it from the local npm cache without reaching any registry.
import { execFile } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../helpers/node-process.ts';

const run = promisify(execFile);
const COMMAND_OUTPUT_BYTES_MAX = 16 * 1024 * 1024;

interface LockEntry {
  version: string;
  dev?: boolean;
  resolved?: string;
  [field: string]: unknown;
}

/** Runs a command to its end with a deadline; rejects with its output on a non-zero exit. */
export async function runCommand(
  file: string,
  args: readonly string[],
  options: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<{ stdout: string; stderr: string }> {
  const env = { ...process.env, ...options.env };
  delete env.NODE_TEST_CONTEXT;
  try {
    return await run(file, args, {
      cwd: options.cwd,
      timeout: options.timeoutMs,
      maxBuffer: COMMAND_OUTPUT_BYTES_MAX,
      env,
    });
  } catch (error) {
    const failed = error as Error & { stdout?: string; stderr?: string };
    throw new Error(
      `${file} ${args.join(' ')} failed: ${failed.message}\nstdout: ${failed.stdout}\nstderr: ${failed.stderr}`,
      { cause: error },
    );
  }
}

/** Writes package.json and package-lock.json of a consumer of `tarball` (a file in `dir`). */
export async function writeConsumerProject(dir: string, tarball: string): Promise<void> {
  const ours = JSON.parse(await fsp.readFile(path.join(PROJECT_ROOT, 'package.json'), 'utf8'));
  const lock = JSON.parse(await fsp.readFile(path.join(PROJECT_ROOT, 'package-lock.json'), 'utf8'));
  const locked = lock.packages as Record<string, LockEntry>;
  const registry = await npmRegistry();
  const devNames = ['typescript', '@types/node'];
  const devDependencies = Object.fromEntries(
    devNames.map((name) => [name, locked[`node_modules/${name}`]!.version]),
  );
  const dependencies = { peerkv: `file:${tarball}` };
  const manifest = { name: 'consumer', version: '1.0.0', type: 'module', private: true };
  const packages: Record<string, unknown> = {
    '': { ...manifest, dependencies, devDependencies },
    'node_modules/peerkv': {
      version: ours.version,
      resolved: `file:${tarball}`,
      dependencies: ours.dependencies,
      bin: ours.bin,
      engines: ours.engines,
    },
  };
  const wanted = (name: string, entry: LockEntry) =>
    entry.dev !== true || devNames.includes(name) || name === 'undici-types';
  for (const [where, entry] of Object.entries(locked)) {
    if (!where.startsWith('node_modules/')) continue;
    const name = where.slice(where.lastIndexOf('node_modules/') + 'node_modules/'.length);
    if (!wanted(name, entry)) continue;
    const base = name.split('/').at(-1);
    packages[where] = {
      ...entry,
      dev: devNames.includes(name) || name === 'undici-types' ? true : undefined,
      resolved: entry.resolved ?? `${registry}/${name}/-/${base}-${entry.version}.tgz`,
    };
  }
  await fsp.writeFile(
    path.join(dir, 'package.json'),
    JSON.stringify({ ...manifest, dependencies, devDependencies }, null, 2),
  );
  const consumerLock = { ...manifest, lockfileVersion: 3, requires: true, packages };
  await fsp.writeFile(path.join(dir, 'package-lock.json'), JSON.stringify(consumerLock, null, 2));
}

/** The registry npm is configured with (tarball URLs in the cache are keyed by it). */
async function npmRegistry(): Promise<string> {
  const { stdout } = await runCommand('npm', ['config', 'get', 'registry'], {
    cwd: PROJECT_ROOT,
    timeoutMs: 30_000,
  });
  return stdout.trim().replace(/\/$/, '');
}
