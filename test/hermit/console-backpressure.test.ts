// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
/**
 * Guest console output through a pipe whose reader falls behind: Node makes a pipe on
 * fd 1 non-blocking, which the native console sink shares, so a full pipe must make
 * the sink wait for the reader, never drop the guest's output.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';
import { buildHermitKernels, hermitKernel } from './hermit-fixtures.js';

beforeAll(() => buildHermitKernels(), 120_000);

const LINES = 20000; // about 210 KB: several times a pipe's 64 KiB

describe('vmrun boot: console output to a reader that falls behind', () => {
  it('every line arrives, in order, although the reader paused while the guest wrote', async () => {
    const child = spawn(process.execPath, [join(REPO, 'bin', 'run.js'), 'boot', hermitKernel('hypercall-loop'), '--memory', '16M', '--debug', '--', `lines=${LINES}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    let stderr = '';
    // --debug's boot trace on stderr says the guest is about to run (vmrun's own start
    // can take many seconds in the nested harness): from then on read nothing for 3 s,
    // so the pipe fills and the sink's writes meet EAGAIN.
    const booted = new Promise<void>((resolve) =>
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('vmrun: hermit: boot info')) resolve();
      }),
    );
    child.stdout.pause();
    await booted;
    await new Promise((r) => setTimeout(r, 3000));
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    child.stdout.resume();
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const lines = Buffer.concat(chunks).toString().split('\n');
    expect(stderr.split('\n').filter((l) => l && !l.startsWith('vmrun: hermit: '))).toEqual([]);
    expect(status).toBe(0);
    expect(lines[0]).toBe('hermit: hypercall-loop');
    const numbered = lines.filter((l) => l.startsWith('line '));
    expect(numbered.length).toBe(LINES);
    expect(numbered.every((l, i) => l === `line ${i + 1}`)).toBe(true);
    expect(lines.slice(-3)).toEqual(['loop: count=0 failures=0', 'hermit: exit 0', '']);
  }, 300_000);
});
