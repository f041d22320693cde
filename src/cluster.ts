/**
 * The embedded default: a local cluster of real node processes on
 * consecutive ports, each with its own data dir, every one peered with the
 * others. Ctrl-C / SIGTERM stops them all cleanly.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseFlags, parsePort } from './cli.ts';
import { codeUrl, loaderExecArgv } from './code-location.ts';
import { ConfigError } from './errors.ts';

export const CLUSTER_USAGE = `Usage: peerkv cluster [options]

  --nodes <n>          how many nodes (default 3, at most 9)
  --base-port <port>   port of the first node; the others follow (default 8001)
  --data-dir <dir>     parent of the nodes' data dirs (default data)
  --pingfreq <s>       passed to every node (default 10)
  --timeout <s>        passed to every node (default 15)
  --log-level <level>  passed to every node (default info)
  --log-format <fmt>   passed to every node: json|pretty (default: pretty on a terminal)
  --cluster-secret-file <path>, --auth-file <path>   passed to every node (see Security)
`;

export interface ClusterOptions {
  readonly nodes: number;
  readonly basePort: number;
  readonly dataDir: string;
  readonly passThrough: string[];
}

export function parseClusterArgs(argv: readonly string[]): ClusterOptions | undefined {
  const flags = parseFlags(argv, [
    'nodes',
    'base-port',
    'data-dir',
    'pingfreq',
    'timeout',
    'log-level',
    'log-format',
    'cluster-secret-file',
    'auth-file',
  ]);
  if (flags.help) return undefined;
  const nodes = Number(flags.nodes ?? '3');
  if (!/^[1-9]$/.test(flags.nodes ?? '3'))
    throw new ConfigError('--nodes must be an integer from 1 to 9');
  const basePort = parsePort(flags['base-port'] ?? '8001');
  if (basePort + nodes - 1 > 65535)
    throw new ConfigError('--base-port leaves no room for every node');
  const passThrough: string[] = [];
  for (const name of [
    'pingfreq',
    'timeout',
    'log-level',
    'log-format',
    'cluster-secret-file',
    'auth-file',
  ] as const) {
    const value = flags[name];
    if (value !== undefined) passThrough.push(`--${name}`, value);
  }
  return { nodes, basePort, dataDir: flags['data-dir'] ?? 'data', passThrough };
}

export async function runCluster(options: ClusterOptions): Promise<void> {
  const ports = Array.from({ length: options.nodes }, (_, index) => options.basePort + index);
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  // The nodes run like this process: compiled, or from the sources through tsx.
  const mainPath = fileURLToPath(codeUrl('./main.ts', import.meta.url));
  const loaderArgs = loaderExecArgv();
  const children = ports.map((port) =>
    spawn(
      process.execPath,
      [
        ...loaderArgs,
        mainPath,
        'node',
        '--port',
        String(port),
        '--peers',
        urls.join(','),
        '--data-dir',
        `${options.dataDir}/node-${port}`,
        ...options.passThrough,
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    ),
  );
  const exits = children.map((child) => waitForExit(child));
  process.stdout.write(
    `peerkv: local cluster of ${options.nodes} node(s)\n${urls.map((url) => `  ${url}`).join('\n')}\n` +
      `try:\n  curl -X POST ${urls[0]}/store -H 'Content-Type: application/json' -d '{"key":"hello","value":"world"}'\n` +
      `  curl ${urls.at(-1)}/store/key?key=hello\nCtrl-C stops every node.\n`,
  );
  const stopAll = () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  };
  process.on('SIGINT', stopAll);
  process.on('SIGTERM', stopAll);
  // One node failing (e.g. its port is taken) brings the others down too.
  const codes = await Promise.all(
    exits.map(async (exit) => {
      const code = await exit;
      stopAll();
      return code;
    }),
  );
  const failed = codes.find((code) => code !== 0);
  if (failed !== undefined) throw new ConfigError(`a node exited with code ${failed}`);
}

function waitForExit(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}
