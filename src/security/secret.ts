/**
 * A secret string that does not show itself: JSON, `util.inspect`, string
 * conversion and pino all print `[redacted]`. Only `reveal()` gives the text,
 * and only the code that puts it on the wire calls it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';

const REDACTED = '[redacted]';

export class Secret {
  readonly #value: string;
  readonly #sha256: Buffer;

  constructor(value: string) {
    this.#value = value;
    this.#sha256 = sha256(value);
  }

  reveal(): string {
    return this.#value;
  }

  /** Whether `candidate` is this secret, in time that depends on neither's content or length. */
  matches(candidate: string): boolean {
    // Hashing first makes both sides 32 bytes, so timingSafeEqual never sees a length difference.
    return timingSafeEqual(this.#sha256, sha256(candidate));
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
