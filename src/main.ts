/**
 * The entry point: `peerkv node [flags]` runs one node, `peerkv cluster`
 * (the default of `npm start`) runs a local 3-node cluster. The only place
 * that exits the process.
 */
import { NODE_USAGE, parseFlags, parseNodeArgs } from './cli.ts';
import { CLIENT_COMMANDS } from './client-cli/usage.ts';
import { ConfigError } from './errors.ts';
import { createRootLogger } from './log.ts';

const USAGE = `Usage: peerkv <command> [flags]

Servers:
  peerkv node --port 8001 --peers http://127.0.0.1:8002,...   run one node
  peerkv node --port 8004 --join http://127.0.0.1:8001        join a running cluster
  peerkv cluster [--nodes 3] [--base-port 8001]               run a local cluster
  peerkv token create --name app --permissions read,write     make a client token
  peerkv new-id --data-dir <dir>                               give a stopped node a new id
  peerkv restore FILE --data-dir <dir> [--force]               a backup -> a new node's data dir

Client (talk to running nodes; --node URL, repeatable, default http://127.0.0.1:8001):
  peerkv get KEY                      print a value
  peerkv put KEY VALUE                write (VALUE as JSON if it parses, else a string; - reads stdin)
  peerkv del KEY                      delete
  peerkv ls [--prefix P] [--limit N]  list keys and values
  peerkv status                       the whole cluster as a table (exit 1 if unhealthy)
  peerkv load FILE.jsonl              bulk write JSON lines {"key","value"}
  peerkv dump [--prefix P]            every entry as JSON lines on stdout
  peerkv member list|add URL|remove ID  show or change the cluster's members
  peerkv backup [--out FILE]          a consistent copy of a node's database (admin)

Client flags: --node URL, --token T (or $PEERKV_TOKEN), --ca FILE, --timeout S, --json.
Run "peerkv <command> --help" (node, cluster, token, get, ...) for the details of any command.
`;

async function runNode(argv: string[]): Promise<void> {
  const config = parseNodeArgs(argv, process.env, process.stdout.isTTY === true);
  if (!config) {
    process.stdout.write(NODE_USAGE);
    return;
  }
  // Read once into the config; child processes (pool workers) need not inherit it.
  delete process.env.PEERKV_CLUSTER_SECRET;
  const log = createRootLogger(config.logLevel, { port: config.port }, config.logFormat);
  // The server's modules (SQLite, the HTTP stack, the pool) load only for the commands that run one.
  const { PeerkvNode } = await import('./node.ts');
  const node = await PeerkvNode.start(config, log);
  process.on('SIGHUP', () => node.reload());
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'signal received');
    node.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.fatal({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

const NEW_ID_USAGE = `Usage: peerkv new-id --data-dir <dir>

  Gives the (stopped) node of <dir> a fresh node id: for two data dirs that
  share one (a copied dir or database file; "peerkv restore" gives a restored
  backup a new id itself). Its data stays; peers resync.
`;

async function runNewId(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, ['data-dir']);
  if (flags.help) {
    process.stdout.write(NEW_ID_USAGE);
    return;
  }
  const dataDir = flags['data-dir'];
  if (dataDir === undefined) throw new ConfigError('--data-dir is required (see --help)');
  const { assignNewNodeId } = await import('./store/new-node-id.ts');
  const { before, after } = assignNewNodeId(dataDir);
  process.stdout.write(`peerkv: node id of ${dataDir} changed from ${before} to ${after}\n`);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === 'node') return runNode(rest);
  if (command === 'new-id') return runNewId(rest);
  // Each command's modules load only for it: a node does not carry the cluster
  // launcher's child_process, the restore's backup reader or the token maker.
  if (command === 'restore') {
    const { parseRestoreArgs, RESTORE_USAGE, runRestore } = await import('./restore-command.ts');
    const request = parseRestoreArgs(rest);
    process.stdout.write(request ? runRestore(request) : RESTORE_USAGE);
    return;
  }
  if (command === 'cluster') {
    const { CLUSTER_USAGE, parseClusterArgs, runCluster } = await import('./cluster.ts');
    const options = parseClusterArgs(rest);
    if (!options) process.stdout.write(CLUSTER_USAGE);
    else await runCluster(options);
    return;
  }
  if (command === 'token') {
    const { createTokenLines, parseTokenArgs, TOKEN_USAGE } = await import('./token-command.ts');
    const request = parseTokenArgs(rest);
    process.stdout.write(request ? createTokenLines(request) : TOKEN_USAGE);
    return;
  }
  if (command !== undefined && CLIENT_COMMANDS.includes(command)) {
    const { runClientCommand } = await import('./client-cli/commands.ts');
    process.exitCode = await runClientCommand(command, rest, {
      stdin: process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
    });
    return;
  }
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return;
  }
  // `peerkv --port 8001 ...` is read as `peerkv node --port 8001 ...`.
  if (command.startsWith('--')) return runNode(argv);
  throw new ConfigError(`unknown command "${command}" (see peerkv --help)`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`peerkv: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(
    `peerkv: fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
