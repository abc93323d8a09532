import { Flags, type Interfaces } from '@oclif/core';
import type { FlagSpec } from './flag-spec.js';

/** The oclif flags for a spec. */
export function oclifFlags(spec: FlagSpec): Interfaces.FlagInput {
  const out: Interfaces.FlagInput = {};
  for (const [name, d] of Object.entries(spec)) {
    const common = { description: d.description, hidden: d.hidden, ...(d.char ? { char: d.char as 'a' } : {}) };
    out[name] = d.type === 'boolean' ? Flags.boolean(common) : Flags.string({ ...common, default: d.default });
  }
  return out;
}

