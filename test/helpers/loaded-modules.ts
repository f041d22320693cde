// The CommonJS modules a fresh process has loaded after running `lines` (ES module code, from
// the project root, through tsx): for tests that a node's modules leave a dependency's heavy
// parts unloaded. A fresh process, since the test file itself may have imported them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { PROJECT_ROOT } from './node-process.ts';

export function modulesLoadedBy(lines: readonly string[]): string[] {
  const script = [
    ...lines,
    "const { createRequire } = await import('node:module');",
    'console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));',
  ].join('\n');
  const child = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script],
    { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout.trim()) as string[];
}
