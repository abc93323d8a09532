// scripts/e2e.sh refuses to test a build older than its sources (the check in
// test/e2e/setup/prepare-on-host.sh): the suite runs dist/ and build/native but its
// in-process tests import src/, and a mix of the two once failed a whole run.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const PREPARE = fileURLToPath(new URL('../e2e/setup/prepare-on-host.sh', import.meta.url));

let checkout: string;

/** Writes `path` under the checkout with its mtime `ageS` seconds ago. */
function write(path: string, ageS: number): void {
  const full = join(checkout, path);
  mkdirSync(dirname(full), { recursive: true });
  writeFileSync(full, '');
  const t = Date.now() / 1000 - ageS;
  utimesSync(full, t, t);
}

/** Sources the check in the checkout as scripts/e2e.sh does (no guest kernel or init there to build). */
function prepare(): { status: number | null; stdout: string; stderr: string } {
  return spawnSync('sh', ['-c', `set -eu; . '${PREPARE}'; echo "checked: $*"`, 'sh', 'a-filter'], { cwd: checkout, encoding: 'utf8' });
}

beforeEach(() => {
  checkout = mkdtempSync(join(tmpdir(), 'vmrun-stale-build-'));
  write('src/run/run-image.ts', 60);
  write('native/vmm/builder.cc', 60);
  write('native/common/hex.h', 60);
  write('dist/built.stamp', 10);
  write('build/native/built.stamp', 10);
});
afterEach(() => rmSync(checkout, { recursive: true, force: true }));

describe("the e2e suite's check that the build is current", () => {
  it('passes a build newer than every source, and leaves the arguments for vitest alone', () => {
    const r = prepare();
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('checked: a-filter\n');
    expect(r.status).toBe(0);
  });

  it('refuses a TypeScript source newer than dist, naming it and the build to run', () => {
    write('src/run/run-image.ts', 0);
    const r = prepare();
    expect(r.status).toBe(125);
    expect(r.stderr).toBe('e2e: src/run/run-image.ts changed after the last build (dist/built.stamp): run npm run build:ts\n');
  });

  it('refuses a native header newer than the addon', () => {
    write('native/common/hex.h', 0);
    const r = prepare();
    expect(r.status).toBe(125);
    expect(r.stderr).toBe('e2e: native/common/hex.h changed after the last build (build/native/built.stamp): run npm run build:native\n');
  });

  it('refuses a checkout never built', () => {
    rmSync(join(checkout, 'build'), { recursive: true });
    const r = prepare();
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/^e2e: build\/native\/built\.stamp is missing .*: run npm run build:native\n$/);
  });
});
