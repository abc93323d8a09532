/**
 * What a TypeScript fuzz target is: a parser of untrusted bytes driven with one
 * input at a time. The parser's own typed error (a VmrunError) is the expected way
 * to refuse bad input; anything else it throws (TypeError, RangeError, a plain
 * Error from a broken invariant), a hang or an unbounded allocation is a crash.
 * fuzz/run-ts.mjs runs every target; test/fuzz-regressions.test.ts replays every
 * corpus input through the same `run`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isVmrunError } from '../../src/errors.js';

export interface FuzzTarget {
  /** Names the corpus directory fuzz/corpus/<name>/. */
  name: string;
  /** Parses one input; throws only what `expected` accepts, unless the parser is wrong. */
  run(data: Buffer): void | Promise<void>;
}

/** True for a parser's refusal of bad input (not a crash). */
export function isExpectedFailure(e: unknown): boolean {
  return isVmrunError(e) && e.kind !== 'internal';
}

/** Runs `f` and swallows only the expected refusals. */
export async function refusalsAllowed(f: () => unknown): Promise<void> {
  try {
    await f();
  } catch (e) {
    if (!isExpectedFailure(e)) throw e;
  }
}

/**
 * A private scratch directory for targets that parse files. Whoever runs the targets
 * removes it: removeScratch() after a replay; fuzz/run-ts.mjs points TMPDIR at a
 * directory of its own and removes that (a worker thread it terminates runs no exit
 * handler).
 */
let scratch: string | undefined;
export function scratchFile(name: string, data: Uint8Array): string {
  scratch ??= mkdtempSync(join(tmpdir(), 'vmrun-fuzz-'));
  const path = join(scratch, name);
  writeFileSync(path, data);
  return path;
}

/** Removes the scratch directory, for whoever ran the targets in this process. */
export function removeScratch(): void {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
}

/** The scratch directory itself (created on first use). */
export function scratchDir(): string {
  if (!scratch) scratchFile('.keep', new Uint8Array());
  return scratch!;
}
