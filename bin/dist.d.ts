/** Types of bin/dist.js (plain JavaScript: the bin reads it before it may load tsx). */
export declare const STAMP_FILE: string;
export declare const MAIN_FILE: string;
export interface BuildStamp {
  readonly sources: string;
  readonly typescript?: string;
  readonly builtAt?: string;
}
export type DistState =
  | { readonly current: true; readonly mainFile: string }
  | { readonly current: false; readonly reason: 'absent' | 'stale' };
export declare function sourceFiles(rootDir: string): string[];
export declare function sourceFingerprint(rootDir: string): string;
export declare function readStamp(outDir: string): BuildStamp | undefined;
export declare function distState(rootDir: string, outDir?: string): DistState;
