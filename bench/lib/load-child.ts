/**
 * A load run in a process of its own (LoadOptions.ownProcess): reads the
 * options as JSON from argv, runs them, prints the LoadResult as JSON on
 * stdout. A light probe that shares an event loop with a heavy load (the
 * 50-connection writes beside a 200/s /store/hash poll) has that loop's delays
 * added to every latency it records.
 */
import { type LoadOptions, runLoad } from './load.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as LoadOptions;
const result = await runLoad({ ...options, ownProcess: false, progressStream: null });
process.stdout.write(`${JSON.stringify(result)}\n`);
