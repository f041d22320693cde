// Shared assertion for the unit tests: a call throws (or a promise rejects with) a PeerkvError with a given code.
import assert from 'node:assert/strict';
import { type ErrorCode, PeerkvError } from '../../src/errors.ts';

/** Asserts that `run` throws a PeerkvError with `code`, and returns it for further checks. */
export function throwsPeerkv(run: () => unknown, code: ErrorCode): PeerkvError {
  let thrown: unknown;
  try {
    run();
  } catch (error) {
    thrown = error;
  }
  return checkPeerkv(thrown, code);
}

/** Asserts that `promise` rejects with a PeerkvError with `code`, and returns it. */
export async function rejectsPeerkv(
  promise: Promise<unknown>,
  code: ErrorCode,
): Promise<PeerkvError> {
  let thrown: unknown;
  try {
    await promise;
  } catch (error) {
    thrown = error;
  }
  return checkPeerkv(thrown, code);
}

function checkPeerkv(thrown: unknown, code: ErrorCode): PeerkvError {
  assert.ok(thrown !== undefined, `expected a PeerkvError ${code}, nothing was thrown`);
  assert.ok(thrown instanceof PeerkvError, `expected a PeerkvError ${code}, got ${String(thrown)}`);
  assert.equal(thrown.code, code, `wrong code (message: ${thrown.message})`);
  return thrown;
}
