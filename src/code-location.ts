/**
 * Where this process's code lives: the TypeScript sources (run through tsx:
 * tests, `tsx src/main.ts`, the bin when dist/ is absent or stale) or the
 * compiled JavaScript in dist/ (the bin when dist/ is current; see
 * bin/dist.js). Worker threads and child processes must load their code the
 * same way: the compiled `.js` file with no loader, or the `.ts` file with
 * tsx's loader. A compiled node never loads tsx, so esbuild's service
 * process and its transform cache stay out of its memory.
 */

/** True when this module runs as TypeScript (through tsx), false when compiled to dist/. */
export const runsFromSources = import.meta.url.endsWith('.ts');

/**
 * The URL of another module of the code base, named as in the sources
 * (`'../workers/store-tasks.ts'`, relative to `baseUrl`, the caller's
 * `import.meta.url`): the `.js` file beside a compiled caller.
 */
export function codeUrl(sourcePath: string, baseUrl: string): URL {
  if (!sourcePath.endsWith('.ts')) throw new TypeError(`not a .ts path: ${sourcePath}`);
  return new URL(runsFromSources ? sourcePath : `${sourcePath.slice(0, -3)}.js`, baseUrl);
}

/** Node flags a child process needs to load code like this one: tsx's loader from sources, none compiled. */
export function loaderExecArgv(): string[] {
  return runsFromSources ? ['--import', import.meta.resolve('tsx')] : [];
}
