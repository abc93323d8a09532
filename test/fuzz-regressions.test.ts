/**
 * Replays every fuzz corpus input (fuzz/corpus/<target>/: the seeds and every crash
 * the fuzzer found, saved as crash-*) through its target (fuzz/ts/<target>.fuzz.ts),
 * so a fixed crash stays fixed. A target's run throws only on a crash: its parser's
 * own typed refusals are swallowed inside it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from './helpers/cli.js';
import { removeScratch, type FuzzTarget } from '../fuzz/ts/target.js';

const FUZZ = join(REPO, 'fuzz');
const targets = readdirSync(join(FUZZ, 'ts'))
  .filter((f) => f.endsWith('.fuzz.ts'))
  .map((f) => f.slice(0, -'.fuzz.ts'.length));

describe('fuzz corpus replay', () => {
  afterAll(removeScratch);

  it('has a target and a non-empty corpus for each parser', () => {
    expect(targets.sort()).toEqual(['docker-archive', 'manifest', 'reference', 'snapshot-file', 'tar-layer', 'www-authenticate']);
    for (const t of targets) expect(readdirSync(join(FUZZ, 'corpus', t)).length, t).toBeGreaterThan(0);
  });

  for (const name of targets) {
    const inputs = readdirSync(join(FUZZ, 'corpus', name)).sort();
    it.each(inputs)(`${name}: %s`, async (file) => {
      const target = ((await import(join(FUZZ, 'ts', `${name}.fuzz.ts`))) as { default: FuzzTarget }).default;
      expect(target.name).toBe(name);
      await target.run(readFileSync(join(FUZZ, 'corpus', name, file)));
    });
  }
});
