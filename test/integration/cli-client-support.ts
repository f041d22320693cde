// Runs the real `peerkv` bin (bin/peerkv.js) as a child process for the CLI client tests: given
// stdin, extra env and a deadline, it resolves with the exit code and the whole stdout and stderr.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { PROJECT_ROOT } from '../helpers/node-process.ts';

export const BIN = path.join(PROJECT_ROOT, 'bin', 'peerkv.js');
const OUTPUT_CHARS_MAX = 64 * 1024 * 1024;
const RUN_TIMEOUT_MS_DEFAULT = 30_000;

export interface BinResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runBin(
  args: readonly string[],
  options: { input?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<BinResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  delete env.NODE_TEST_CONTEXT;
  delete env.PEERKV_TOKEN;
  Object.assign(env, options.env);
  const child = spawn(process.execPath, [BIN, ...args], { cwd: PROJECT_ROOT, env });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    if (stdout.length < OUTPUT_CHARS_MAX) stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    if (stderr.length < OUTPUT_CHARS_MAX) stderr += chunk;
  });
  child.stdin.end(options.input ?? '');
  const timeoutMs = options.timeoutMs ?? RUN_TIMEOUT_MS_DEFAULT;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`peerkv ${args.join(' ')} still running after ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Exit `code` with exactly one line on stderr, no stack trace. */
export function oneLineError(result: BinResult): string {
  const lines = result.stderr.trimEnd().split('\n');
  if (lines.length !== 1 || /\bat .+:\d+:\d+/.test(result.stderr)) {
    throw new Error(`expected one line on stderr, got:\n${result.stderr}`);
  }
  return lines[0]!;
}
