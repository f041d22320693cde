/** A bounded ring of latency samples with percentiles (for replication lag). */
export class LagSamples {
  readonly #samples: Float64Array;
  #count = 0;
  #next = 0;

  constructor(capacity: number) {
    this.#samples = new Float64Array(capacity);
  }

  add(value: number): void {
    this.#samples[this.#next] = value;
    this.#next = (this.#next + 1) % this.#samples.length;
    this.#count = Math.min(this.#count + 1, this.#samples.length);
  }

  percentile(p: number): number | null {
    if (this.#count === 0) return null;
    const sorted = this.#samples.slice(0, this.#count).sort();
    return sorted[Math.min(this.#count - 1, Math.floor((p / 100) * this.#count))]!;
  }
}
