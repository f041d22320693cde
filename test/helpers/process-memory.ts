// Resident memory of a process from /proc (Linux): what a test of a memory bound samples.
import fs from 'node:fs';

const KiB = 1024;

/** VmRSS and VmHWM (the peak) of `pid`, in bytes; undefined once the process is gone. */
export function processMemory(pid: number): { rssBytes: number; peakBytes: number } | undefined {
  let status: string;
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    // The process exited (or /proc is missing): no figure.
    return undefined;
  }
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status);
    return match ? Number(match[1]) * KiB : 0;
  };
  return { rssBytes: field('VmRSS'), peakBytes: field('VmHWM') };
}

/** Samples the RSS of `pid` every `intervalMs` until stop(); `maxBytes` is the highest seen. */
export class RssSampler {
  maxBytes = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(pid: number, intervalMs = 50) {
    const sample = (): void => {
      const memory = processMemory(pid);
      if (memory) this.maxBytes = Math.max(this.maxBytes, memory.rssBytes);
    };
    sample();
    this.#timer = setInterval(sample, intervalMs);
  }

  stop(): number {
    clearInterval(this.#timer);
    return this.maxBytes;
  }
}

export const MiB = 1024 * KiB;
