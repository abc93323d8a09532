/**
 * docker's rule for `run`: options come before IMAGE; everything after IMAGE is the
 * command and its arguments, even if it looks like an option (`run img sh -c "..."`).
 * Grouped short booleans (`-it`, `-dit`) are expanded like docker does.
 */
export function splitRunArgv(
  argv: string[],
  spec: { valueFlags: Set<string>; booleanShorts: Set<string> },
): { vmrunArgs: string[]; image?: string; command: string[] } {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return { vmrunArgs: out, image: argv[i + 1], command: argv.slice(i + 2) };
    if (!a.startsWith('-') || a === '-') return { vmrunArgs: out, image: a, command: argv.slice(i + 1) };
    if (/^-[a-zA-Z]{2,}$/.test(a) && [...a.slice(1)].every((c) => spec.booleanShorts.has(c))) {
      for (const c of a.slice(1)) out.push(`-${c}`);
      continue;
    }
    out.push(a);
    if (spec.valueFlags.has(a) && !a.includes('=')) {
      const v = argv[++i];
      if (v !== undefined) out.push(v);
    }
  }
  return { vmrunArgs: out, command: [] };
}

/**
 * The split spec of a command's flags, oclif's (type 'option' takes a value) or a
 * FlagSpec's (type 'string'): which take a value, which short ones are booleans.
 */
export function splitSpecOf(flags: Record<string, { type: string; char?: string }>): { valueFlags: Set<string>; booleanShorts: Set<string> } {
  const valueFlags = new Set<string>();
  const booleanShorts = new Set<string>();
  for (const [name, f] of Object.entries(flags)) {
    const takesValue = f.type === 'option' || f.type === 'string';
    if (takesValue) valueFlags.add(`--${name}`);
    if (f.char) (takesValue ? valueFlags.add(`-${f.char}`) : booleanShorts.add(f.char));
  }
  return { valueFlags, booleanShorts };
}
