import { Flags, type Interfaces } from '@oclif/core';
import type { FlagSpec } from './flag-spec.js';

/** The oclif flags for a spec. */
export function oclifFlags(spec: FlagSpec): Interfaces.FlagInput {
  const out: Interfaces.FlagInput = {};
  for (const [name, d] of Object.entries(spec)) {
    const common = { description: d.description, hidden: d.hidden, ...(d.char ? { char: d.char as 'a' } : {}) };
    if (d.type === 'boolean') out[name] = Flags.boolean(common);
    else if (d.multiple) out[name] = Flags.string({ ...common, multiple: true, multipleNonGreedy: true });
    else out[name] = Flags.string({ ...common, default: d.default });
  }
  return out;
}

