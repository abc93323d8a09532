import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../helpers/cli.js';

// The C++ unit tests (test/native/*_test.cc: devices, state codecs, the bus, and the
// replay of every committed fuzz input) run as their own executable, built by
// `npm run build` (scripts/build-native-tests.sh). Its output is shown when it fails.
const BINARY = join(REPO, 'build', 'native-tests', 'vmrun_native_tests');

describe('native unit tests', () => {
  it('all pass', () => {
    expect(existsSync(BINARY), `${BINARY} is missing: run npm run build:native-tests`).toBe(true);
    const r = spawnSync(BINARY, [], { encoding: 'utf8', timeout: 120_000 });
    const output = `${r.stdout}\n${r.stderr}`;
    const closing = /^(\d+) passed, (\d+) failed$/m.exec(r.stdout);
    expect({ status: r.status, failed: closing?.[2], output: r.status === 0 ? '' : output }).toEqual({ status: 0, failed: '0', output: '' });
    expect(Number(closing![1])).toBeGreaterThan(20);
  }, 150_000);
});
