/**
 * The client commands of the `peerkv` bin, on `peerkv/client`: get, put,
 * del, ls, status, load, dump, backup. Each returns its exit code; a usage mistake
 * throws a ConfigError (exit 2), a failed call a PeerkvClientError, which
 * `runClientCommand` prints as one line (exit 1).
 */
import { createClient, type PeerkvClient } from '../client/client.ts';
import { PeerkvClientError, PeerkvResponseError } from '../client/errors.ts';
import type { Entry, JsonValue, MemberChange } from '../client/types.ts';
import { ConfigError } from '../errors.ts';
import { backupCommand } from './backup-command.ts';
import { type BulkIo, dump, load } from './bulk.ts';
import { formatStatus, formatValue, table } from './format.ts';
import { type CommandOptions, parseCommand } from './options.ts';
import { CLIENT_USAGE } from './usage.ts';

export interface CommandIo extends BulkIo {
  readonly stdout: NodeJS.WriteStream;
  readonly env: NodeJS.ProcessEnv;
}

const LS_LIMIT_DEFAULT = 100;
const LS_PAGE_MAX = 1_000;
const STDIN_BYTES_MAX = 16 * 1024 * 1024;
const VALUE_COLUMN_CHARS_MAX = 60;

type Command = (client: PeerkvClient, options: CommandOptions, io: CommandIo) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  get: getCommand,
  put: putCommand,
  del: delCommand,
  ls: lsCommand,
  status: statusCommand,
  load: loadCommand,
  dump: dumpCommand,
  member: memberCommand,
  backup: backupCommand,
};

/** Runs `peerkv <command> ...argv`; resolves with the exit code. */
export async function runClientCommand(
  command: string,
  argv: readonly string[],
  io: CommandIo,
): Promise<number> {
  const options = parseCommand(command, argv, io.env);
  if (options.help) {
    io.stdout.write(CLIENT_USAGE[command]!);
    return 0;
  }
  const client = createClient({
    nodes: options.nodes,
    token: options.token,
    ca: options.ca,
    timeoutMs: options.timeoutMs,
    // With one node there is nowhere to fail over to: retrying a slow call on the same node
    // only adds load, so the attempt gets the whole deadline.
    ...(options.nodes.length === 1 && { attemptTimeoutMs: options.timeoutMs }),
  });
  try {
    return await COMMANDS[command]!(client, options, io);
  } catch (error) {
    if (!(error instanceof PeerkvClientError)) throw error;
    io.stderr.write(`peerkv ${command}: ${describeFailure(error)}\n`);
    return 1;
  } finally {
    await client.close();
  }
}

function describeFailure(error: PeerkvClientError): string {
  if (error instanceof PeerkvResponseError) {
    return `${error.message} (${error.code}, HTTP ${error.status} from ${error.node})`;
  }
  return `${error.message} (${error.code})`;
}

function writeJson(io: CommandIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value)}\n`);
}

async function getCommand(client: PeerkvClient, options: CommandOptions, io: CommandIo) {
  const key = options.positional[0]!;
  const entry = await client.get(key);
  if (entry === undefined) {
    io.stderr.write(`peerkv get: key ${JSON.stringify(key)} not found\n`);
    return 1;
  }
  if (options.json) writeJson(io, entry);
  else io.stdout.write(`${formatValue(entry.value)}\n`);
  return 0;
}

async function putCommand(client: PeerkvClient, options: CommandOptions, io: CommandIo) {
  const [key, text] = options.positional as [string, string];
  const value = parseValue(text === '-' ? await readStdin(io.stdin) : text);
  const result = await client.put(key, value);
  if (options.json) writeJson(io, result);
  else io.stdout.write(`OK ${result.key} ${result.version}\n`);
  return 0;
}

/** JSON if the text parses as JSON, else the text itself as a string. */
export function parseValue(text: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return text;
  }
}

async function readStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of stdin) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    bytes += buffer.length;
    if (bytes > STDIN_BYTES_MAX) throw new ConfigError(`stdin exceeds ${STDIN_BYTES_MAX} bytes`);
    chunks.push(buffer);
  }
  // `echo value | peerkv put k -` stores "value", not "value\n".
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

async function delCommand(client: PeerkvClient, options: CommandOptions, io: CommandIo) {
  const result = await client.delete(options.positional[0]!);
  if (options.json) writeJson(io, result);
  else {
    const existed = result.existed ? 'deleted' : 'did not exist (tombstone written)';
    io.stdout.write(`${result.key} ${existed} ${result.version}\n`);
  }
  return 0;
}

async function lsCommand(client: PeerkvClient, options: CommandOptions, io: CommandIo) {
  const limit = options.limit ?? LS_LIMIT_DEFAULT;
  const items: Entry[] = [];
  let after = options.after;
  let next: string | null = null;
  do {
    const page = await client.list({
      prefix: options.prefix,
      after,
      limit: Math.min(LS_PAGE_MAX, limit - items.length),
    });
    items.push(...page.items);
    next = page.next;
    after = next ?? undefined;
  } while (next !== null && items.length < limit);
  if (options.json) {
    writeJson(io, { items, next });
    return 0;
  }
  const rows = items.map((entry) => [entry.key, oneLine(entry.value)]);
  if (rows.length > 0) io.stdout.write(table(['KEY', 'VALUE'], rows));
  const more = next === null ? '' : ` (more after ${JSON.stringify(next)}: use --limit or --after)`;
  if (io.stderr.isTTY) io.stderr.write(`${items.length} key(s)${more}\n`);
  return 0;
}

function oneLine(value: JsonValue): string {
  const text = JSON.stringify(value);
  return text.length > VALUE_COLUMN_CHARS_MAX
    ? `${text.slice(0, VALUE_COLUMN_CHARS_MAX - 3)}...`
    : text;
}

async function statusCommand(client: PeerkvClient, options: CommandOptions, io: CommandIo) {
  const overview = await client.overview();
  if (options.json) writeJson(io, overview);
  else io.stdout.write(formatStatus(overview, Date.parse(overview.asOf)));
  return overview.healthy ? 0 : 1;
}

async function loadCommand(client: PeerkvClient, options: CommandOptions, io: CommandIo) {
  const { written } = await load(client, options.positional[0]!, options.concurrency, io);
  if (options.json) writeJson(io, { written });
  else io.stdout.write(`loaded ${written.toLocaleString('en-US')} entries\n`);
  return 0;
}

async function dumpCommand(client: PeerkvClient, options: CommandOptions, io: CommandIo) {
  const { written } = await dump(client, options.prefix, io);
  if (io.stderr.isTTY) io.stderr.write(`dumped ${written.toLocaleString('en-US')} entries\n`);
  return 0;
}

async function memberCommand(client: PeerkvClient, options: CommandOptions, io: CommandIo) {
  const [action, argument] = options.positional;
  const wanted = action === 'list' ? 0 : action === 'add' || action === 'remove' ? 1 : -1;
  if (wanted < 0 || options.positional.length !== 1 + wanted) {
    throw new ConfigError('member: expected list, add URL or remove ID (see peerkv member --help)');
  }
  const answer: MemberChange =
    action === 'list'
      ? await client.members()
      : action === 'add'
        ? await client.addMember(argument!)
        : await client.removeMember(argument!);
  if (options.json) {
    writeJson(io, answer);
    return 0;
  }
  if (answer.added !== undefined) {
    io.stdout.write(answer.added ? `added ${answer.url}\n` : `${answer.url} already a member\n`);
  }
  if (answer.removed !== undefined) io.stdout.write(`removed ${answer.removed}\n`);
  const rows = answer.members.map((member) => [
    member.url,
    member.nodeId,
    member.state,
    member.self ? 'self' : '',
  ]);
  io.stdout.write(table(['URL', 'NODE ID', 'STATE', ''], rows));
  return 0;
}
