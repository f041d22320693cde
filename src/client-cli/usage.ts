/** Help texts of the client commands of the `peerkv` bin. */

const COMMON = `
Connection flags (every command):
  --node <url>        a node to talk to; repeat for failover (default http://127.0.0.1:8001)
  --token <token>     bearer token (default: $PEERKV_TOKEN)
  --ca <file>         PEM file of the CA to trust for https:// nodes
  --timeout <s>       deadline of each call, failover included (default 10)
  --json              machine-readable output (JSON)
  --help              this help
`;

export const CLIENT_USAGE: Record<string, string> = {
  get: `Usage: peerkv get KEY

Prints the value of KEY (a string as is, anything else as JSON); with --json
prints {"key","value","version"}. A missing key: exit code 1.
${COMMON}`,
  put: `Usage: peerkv put KEY VALUE
       peerkv put KEY -          (the value is read from stdin)

VALUE is stored as JSON if it parses as JSON (42, true, {"a":1}, "quoted"),
else as the string itself. Prints the version written.
${COMMON}`,
  del: `Usage: peerkv del KEY

Deletes KEY (writes a versioned tombstone that replicates like a write).
${COMMON}`,
  ls: `Usage: peerkv ls [--prefix P] [--limit N] [--after KEY]

Lists live keys in key order with their values: at most N (default 100,
at most 1,000,000), only those starting with P, from after KEY. With --json
prints {"items":[...],"next":KEY|null}.
${COMMON}`,
  status: `Usage: peerkv status

A table of the whole cluster, from GET /cluster/nodes of the first node that
answers: every node, up or down, its keys, hash, changes pending towards it,
replication lag and last resync. Exit code 1 if a node is down or the hashes
differ, 0 when the cluster is healthy.
${COMMON}`,
  load: `Usage: peerkv load FILE.jsonl      (- reads stdin)
       [--concurrency N]

Writes every line {"key": K, "value": V} of the file (the format dump writes;
other fields are ignored, blank lines skipped). A file is checked whole before
the first write: a bad line stops it with the line number and nothing written
(from stdin, the lines before a bad one are written).
Entries go in POST /batch calls of 500 (single puts on a node without that
route), N requests in flight at once (default 4); a key that appears again
waits for its earlier write, so the last line for a key wins. A progress bar
shows on a terminal (stderr), none when piped.
${COMMON}`,
  backup: `Usage: peerkv backup > FILE.db
       peerkv backup --out FILE.db

A consistent copy of one node's SQLite database (GET /backup, permission
admin), taken while the node keeps serving writes; restore it with
"peerkv restore FILE.db --data-dir DIR". With --out the copy is written to
FILE.db.partial and renamed once it is complete and on disk; a copy cut
short fails (exit 1) and leaves no FILE.db. With several --node, the first
that can send one does (a node already sending a backup answers 503).
A summary goes to stderr (JSON with --json; on stdout with --out).
--timeout here is how long the node may take to make its copy before the
first byte, and the longest pause after (default 600).
${COMMON}`,
  dump: `Usage: peerkv dump [--prefix P] > FILE.jsonl

Writes every live entry (under P) as one JSON line {"key","value","version"},
in key order. A progress bar shows on a terminal (stderr), none when piped.
${COMMON}`,
  member: `Usage: peerkv member list
       peerkv member add URL        (e.g. http://127.0.0.1:8004)
       peerkv member remove ID      (a node id, or a member's URL)

Shows or changes the cluster's members through any member (needs a token
with the admin permission when the nodes check tokens). A change made on one
member reaches every member, also one that is down and comes back. A removed
member stops replicating with the others; a node cannot remove itself.
Start a new node with "peerkv node --join URL" rather than adding it here:
it then adds itself and fills itself from its peers.
${COMMON}`,
};

export const CLIENT_COMMANDS = Object.keys(CLIENT_USAGE);
