import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { REPO } from './helpers/cli.js';

// The layering of src/, written down and checked (the habit of a dependency-cruiser
// config): CLI command -> library -> the one typed addon boundary -> native.

const SRC = join(REPO, 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Every relative import of a file, as a path relative to src/ (e.g. "native/addon.ts"). */
function importsOf(file: string): { relative: string[]; packages: string[] } {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2]!);
  return {
    relative: specs.filter((s) => s.startsWith('.')).map((s) => relative(SRC, resolve(dirname(file), s)).replace(/\.js$/, '.ts')),
    packages: specs.filter((s) => !s.startsWith('.')),
  };
}

const all = files(SRC).map((f) => ({ file: relative(SRC, f), ...importsOf(f) }));
const folder = (p: string) => p.split('/')[0]!;

/** Folders each folder must not import from. */
const FORBIDDEN: Record<string, string[]> = {
  oci: ['machine', 'snapshot', 'vmhost', 'commands', 'native', 'cli', 'run'],
  initramfs: ['machine', 'snapshot', 'vmhost', 'commands', 'native', 'cli'],
  blockfs: ['machine', 'snapshot', 'vmhost', 'commands', 'native', 'cli', 'run', 'initramfs'],
  snapshot: ['commands', 'cli', 'vmhost', 'oci', 'run'],
  machine: ['commands', 'cli', 'vmhost', 'oci', 'run', 'initramfs'],
  vmhost: ['commands'],
  native: ['machine', 'snapshot', 'vmhost', 'commands', 'cli', 'oci'],
  host: ['commands', 'cli', 'machine', 'snapshot', 'vmhost', 'oci'],
  agent: ['commands', 'cli', 'machine', 'snapshot', 'vmhost', 'oci', 'run', 'native', 'initramfs'],
};

describe('architecture', () => {
  it('found the sources', () => {
    expect(all.length).toBeGreaterThan(30);
  });

  for (const [from, banned] of Object.entries(FORBIDDEN)) {
    it(`src/${from} does not import ${banned.join(', ')}`, () => {
      const violations = all
        .filter((f) => folder(f.file) === from)
        .flatMap((f) => f.relative.filter((i) => banned.includes(folder(i))).map((i) => `${f.file} -> ${i}`));
      expect(violations).toEqual([]);
    });
  }

  it('only src/native/addon.ts loads the native addon', () => {
    const loaders = all.filter((f) => /\.node['"]|vmrun_native/.test(readFileSync(join(SRC, f.file), 'utf8'))).map((f) => f.file);
    expect(loaders).toEqual(['native/addon.ts']);
  });

  it('commands reach the addon only through the library', () => {
    const violations = all.filter((f) => folder(f.file) === 'commands').flatMap((f) => f.relative.filter((i) => folder(i) === 'native').map((i) => `${f.file} -> ${i}`));
    expect(violations).toEqual([]);
  });

  it('the library does not depend on the CLI framework', () => {
    const allowed = new Set(['commands', 'cli']);
    const violations = all
      .filter((f) => !allowed.has(folder(f.file)))
      .filter((f) => f.packages.some((p) => p.startsWith('@oclif/')))
      .map((f) => f.file);
    expect(violations).toEqual([]);
  });

  it('the start-up fast path does not load oclif', () => {
    // cli/fast-path.ts and what it imports statically must stay free of @oclif/core.
    const seen = new Set<string>();
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      const entry = all.find((f) => f.file === file);
      if (!entry) return;
      expect(entry.packages.filter((p) => p.startsWith('@oclif/')), `${file} imports oclif`).toEqual([]);
      const text = readFileSync(join(SRC, file), 'utf8');
      // Static imports only: dynamic import() is how the fast path defers work.
      for (const m of text.matchAll(/^(?:import|export)\s(?!type)[^'"]*?from\s+['"](\.[^'"]+)['"]/gm))
        visit(relative(SRC, resolve(dirname(join(SRC, file)), m[1]!)).replace(/\.js$/, '.ts'));
    };
    visit('cli/fast-path.ts');
    visit('cli/restore-action.ts');
    expect(seen.size).toBeGreaterThan(3);
  });
});
