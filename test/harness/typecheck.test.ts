/**
 * The harness is plain JavaScript with JSDoc types (`// @ts-check`), which no build
 * checks: this test runs the TypeScript compiler over it. It caught a command that
 * requireCommand did not know (`cc`), whose "install it with" named no package.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const HARNESS_DIR = dirname(fileURLToPath(import.meta.url));
const TSC = join(HARNESS_DIR, '..', '..', 'node_modules', 'typescript', 'bin', 'tsc');

describe('the harness JavaScript', () => {
  it('type-checks under its JSDoc types', () => {
    const files = readdirSync(HARNESS_DIR).filter((f) => f.endsWith('.js')).map((f) => join(HARNESS_DIR, f));
    expect(files.length).toBeGreaterThan(10);
    const tsc = spawnSync(process.execPath, [
      TSC, '--noEmit', '--allowJs', '--checkJs', '--strict', 'false', '--module', 'nodenext', '--moduleResolution', 'nodenext',
      '--target', 'es2022', '--skipLibCheck', '--types', 'node', ...files,
    ], { encoding: 'utf8', timeout: 120_000 });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
  }, 120_000);
});
