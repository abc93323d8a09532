/**
 * Hermit kernels where KVM runs guests natively (the nested harness's L1, or a host
 * with vmx/svm): a test kernel that uses SSE, which this project's PVM-backed KVM
 * rejects, and the uhyve interface test, booted through the CLI.
 * Run: scripts/e2e.sh test/e2e/hermit.test.ts
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { vmrun } from '../helpers/cli.js';
import { buildHermitKernels, expectedUhyveTestTail, hermitKernel, makeMappedTree } from '../hermit/hermit-fixtures.js';
import { buildLayer, writeOciLayout } from '../oci/image-builder.js';

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

/** uhyve's own test kernel (Hermit 0.6.9, interface v1, a Rust program using SSE), built by the Hermit project. */
const HELLO_WORLD = '/work/shared/fixtures/hermit/hello_world';

describe("the Hermit project's hello_world (Hermit 0.6.9, uhyve interface v1)", () => {
  it('boots, greets and exits 0', async () => {
    const r = await vmrun(['boot', HELLO_WORLD, '--memory', '64M'], { timeoutMs: 5 * 60_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('Welcome to Hermit 0.6.9');
    // The application's own output (a Write hypercall on fd 1), then the kernel's shutdown statistics.
    expect(r.stdout).toMatch(/\nHello, world!\n[^]*Number of interrupts/);
    expect(r.status).toBe(0);
  });

  it('arguments and -e reach it: --debug shows them read back from where the kernel asked for them', async () => {
    const r = await vmrun(['boot', '--debug', HELLO_WORLD, '--memory', '64M', '-e', 'FOO=bar', '-e', 'GREETING=hello world', '--', 'one', 'two words'], {
      timeoutMs: 5 * 60_000,
    });
    expect(r.stdout).toContain('\nHello, world!\n');
    expect(r.status).toBe(0);
    const trace = r.stderr.split('\n').filter((l) => l.startsWith('vmrun: hermit: '));
    expect(trace[0]).toMatch(/^vmrun: hermit: entry version 4, interface v1 \(relocated\); kernel 0x[0-9a-f]+-0x[0-9a-f]+, entry 0x/);
    expect(trace[1]).toMatch(/^vmrun: hermit: boot info at 0x9000: ram 0x0-0x4000000, serial port 0x800, device tree 0x5000, cpus 1, cpu \d+ kHz$/);
    // Cmdsize, then Cmdval: each string as it now is in guest memory, at the address the kernel gave.
    const handover = trace.slice(2).map((l) => l.replace(/ at 0x[0-9a-f]+ /, ' at ADDR '));
    expect(handover).toEqual([
      'vmrun: hermit: Cmdsize argc=3 envc=128 (2 of the application, the rest empty)',
      `vmrun: hermit: Cmdval argv[0] at ADDR = "${HELLO_WORLD}"`,
      'vmrun: hermit: Cmdval argv[1] at ADDR = "one"',
      'vmrun: hermit: Cmdval argv[2] at ADDR = "two words"',
      'vmrun: hermit: Cmdval env[0] at ADDR = "FOO=bar"',
      'vmrun: hermit: Cmdval env[1] at ADDR = "GREETING=hello world"',
    ]);
    // Heap addresses of the kernel's own allocations: above the kernel image, inside RAM.
    for (const l of trace.slice(3)) expect(Number(/ at (0x[0-9a-f]+) /.exec(l)![1])).toBeLessThan(0x4000000);
  });

  it('shipped in an OCI image, it runs through vmrun run', async () => {
    const root = mkdtempSync(join(process.env.XDG_RUNTIME_DIR && existsSync(process.env.XDG_RUNTIME_DIR) ? process.env.XDG_RUNTIME_DIR : tmpdir(), 'vmrun-hermit-oci-'));
    try {
      const layout = join(root, 'layout');
      const layer = await buildLayer([
        { name: 'app', type: 'directory', mode: 0o755 },
        { name: 'app/hello_world', content: readFileSync(HELLO_WORLD), mode: 0o755 },
      ]);
      await writeOciLayout(layout, { v1: { layers: [layer], config: { Entrypoint: ['/app/hello_world'], Env: ['PATH=/app'] } } });
      const env = { VMRUN_HOME: join(root, 'home'), VMRUN_CACHE: join(root, 'cache'), VMRUN_RUNTIME_DIR: join(root, 'run') };
      const r = await vmrun(['run', '-q', '--memory', '64M', `oci:${layout}:v1`], { env, timeoutMs: 5 * 60_000 });
      expect(r.stderr).toBe('');
      expect(r.stdout).toContain('\nHello, world!\n');
      expect(r.status).toBe(0);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('a Hermit guest that reports a CPU exception and then idles', () => {
  it('is stopped with 125 and the report, without --timeout', async () => {
    const t0 = Date.now();
    const r = await vmrun(['boot', hermitKernel('uhyve-v2'), '--memory', '32M', '--', 'exception-stall'], { timeoutMs: 5 * 60_000 });
    expect(r.status).toBe(125);
    expect(r.stdout).toContain('[0][ERROR] General Protection (#GP) Exception');
    expect(r.stderr).toBe(
      'vmrun: guest stopped: the Hermit kernel reported a CPU exception ([0][ERROR] General Protection (#GP) Exception: ' +
        'ExceptionStackFrame { rip: 0x1234 }, error 0x0) and made no hypercall in the 5 s after it\n',
    );
    // The grace period, not a time-out of the test.
    expect(Date.now() - t0).toBeLessThan(4 * 60_000);
  });
});
