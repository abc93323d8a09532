// @ts-check
/**
 * Which files make up the e2e suite: every file under test/e2e ending in .test.ts.
 * vitest.e2e.config.ts includes them by this rule, and the per-file runner
 * (run-files-in-l1.js) lists them by it, so a new test file needs no registration.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
export const E2E_DIR = 'test/e2e';
export const TEST_FILE_SUFFIX = '.test.ts';
/** The same rule as a vitest include glob. */
export const E2E_INCLUDE = `${E2E_DIR}/**/*${TEST_FILE_SUFFIX}`;

/** Every e2e test file, relative to the repo, sorted. @returns {string[]} */
export function e2eTestFiles() {
  /** @type {string[]} */
  const files = [];
  const walk = (/** @type {string} */ dir) => {
    for (const entry of readdirSync(join(REPO, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(TEST_FILE_SUFFIX)) files.push(path);
    }
  };
  walk(E2E_DIR);
  return files.sort();
}
