/**
 * Hermit kernels where KVM runs guests natively (the nested harness's L1, or a host
 * with vmx/svm): a test kernel that uses SSE, which this project's PVM-backed KVM
 * rejects, and the uhyve interface test, booted through the CLI.
 * Run: scripts/e2e.sh test/e2e/hermit.test.ts
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { vmrun } from '../helpers/cli.js';
import { buildHermitKernels, expectedUhyveTestTail, hermitKernel, makeMappedTree } from '../hermit/hermit-fixtures.js';

beforeAll(() => buildHermitKernels(), 10 * 60_000);

describe('Hermit kernels on a KVM that runs guests natively', () => {
  it('a kernel using SSE runs to its exit', async () => {
    const r = await vmrun(['boot', hermitKernel('sse'), '--memory', '32M'], { timeoutMs: 5 * 60_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hermit: sse\nsse: dot=32000/1000\nhermit: exit 0\n');
    expect(r.status).toBe(0);
  });

  it('the uhyve v2 interface test passes there too', async () => {
    const tree = makeMappedTree();
    const path = hermitKernel('uhyve-v2');
    const r = await vmrun(
      ['boot', path, '--memory', '64M', '--file-mapping', `${tree.data}:/data`, '-e', 'FOO=bar', '-e', 'GREETING=hello world', '--', 'one', 'two words', 'exit=7'],
      { env: { TMPDIR: tree.tmp }, timeoutMs: 5 * 60_000 },
    );
    expect(r.status).toBe(7);
    const lines = r.stdout.split('\n').slice(0, -1);
    const tail = expectedUhyveTestTail(2, 'uhyve-v2', basename(path));
    expect(lines.slice(lines.length - tail.length)).toEqual(tail);
    expect(readFileSync(join(tree.data, 'output.txt'), 'utf8')).toBe('written by uhyve-v2\n');
  });
});
