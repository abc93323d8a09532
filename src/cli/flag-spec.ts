/**
 * One definition of a command's flags, turned into oclif flags for the full CLI
 * (oclif-flags.ts) and parsed here with node:util's parseArgs on the start-up fast
 * path (fast-path.ts): a latency-critical command never loads oclif, and its flags
 * still exist only once. This file must not import oclif.
 */
import { parseArgs } from 'node:util';
import { VmrunError } from '../errors.js';

export interface FlagDef {
  type: 'boolean' | 'string';
  char?: string;
  description: string;
  default?: string;
  hidden?: boolean;
  /** A string flag that may be given several times (values in order). */
  multiple?: boolean;
}
export type FlagSpec = Record<string, FlagDef>;

/** Parses argv against a spec without oclif; returns positionals and flag values. */
export function parseFast(spec: FlagSpec, argv: string[]): { positionals: string[]; flags: Record<string, string | boolean | string[] | undefined> } {
  const options: Record<string, { type: 'boolean' | 'string'; short?: string; default?: string; multiple?: boolean }> = {};
  for (const [name, d] of Object.entries(spec)) {
    options[name] = { type: d.type, ...(d.char ? { short: d.char } : {}), ...(d.default ? { default: d.default } : {}), ...(d.multiple ? { multiple: true } : {}) };
  }
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { positionals, flags: values as Record<string, string | boolean | string[] | undefined> };
  } catch (e) {
    throw new VmrunError('usage', (e as Error).message);
  }
}
