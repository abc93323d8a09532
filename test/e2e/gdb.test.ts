/**
 * The gdb stub (`vmrun boot --gdb`, docs/gdb.md) driven by Debian's gdb in batch mode
 * against a Hermit test kernel with debug info (fixtures/hermit/gdb-target): break at
 * a named function, read a register and variables, step one instruction, continue to
 * the guest's own exit code. In the nested harness's L1, KVM does not report int3 to
 * the VMM, so this also covers breakpoints emulated by single-stepping.
 * Run: scripts/e2e.sh test/e2e/gdb.test.ts
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';
import { buildHermitKernels, hermitKernel } from '../hermit/hermit-fixtures.js';

beforeAll(() => buildHermitKernels(), 10 * 60_000);

interface Finished {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `vmrun boot --gdb 0 --cpus N KERNEL`; resolves the stub's address (and its stderr so far) once vmrun prints it. */
function bootWithGdb(kernel: string, cpus: number): { address: Promise<string>; stderr: () => string; done: Promise<Finished> } {
  const child = spawn(process.execPath, [join(REPO, 'bin', 'run.js'), 'boot', '--gdb', '0', '--memory', '32M', '--cpus', String(cpus), kernel], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let announce: (a: string) => void = () => {};
  const address = new Promise<string>((resolve) => (announce = resolve));
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    const m = /for a debugger on (\S+) /.exec(stderr);
    if (m) announce(m[1]!);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
  const done = new Promise<Finished>((resolve) =>
    child.on('close', (status) => {
      clearTimeout(timer);
      announce('');
      resolve({ status, stdout, stderr });
    }),
  );
  return { address, stderr: () => stderr, done };
}

function gdbBatch(elf: string | undefined, commands: string[]): Promise<Finished> {
  const args = ['-nx', '-batch', '-ex', 'set pagination off', '-ex', 'set confirm off', ...(elf ? [elf] : []), ...commands.flatMap((c) => ['-ex', c])];
  return new Promise((resolve) => {
    const child = spawn('gdb', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/**
 * Boots a test kernel under the stub and runs gdb's commands against it; both results.
 * `commands` may depend on what vmrun said on stderr (a relocated kernel's offset); gdb
 * gets the ELF as its file unless `noFile`.
 */
async function debugSession(
  kernel: string,
  cpus: number,
  commands: string[] | ((vmStderr: string) => string[]),
  noFile = false,
): Promise<{ gdb: Finished; vm: Finished; context: string }> {
  const elf = hermitKernel(kernel);
  const vm = bootWithGdb(elf, cpus);
  const address = await vm.address;
  expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
  const list = typeof commands === 'function' ? commands(vm.stderr()) : commands;
  const gdb = await gdbBatch(noFile ? undefined : elf, [`target remote ${address}`, ...list]);
  const result = await vm.done;
  const context = `gdb stdout:\n${gdb.stdout}\ngdb stderr:\n${gdb.stderr}\nvmrun stdout:\n${result.stdout}\nvmrun stderr:\n${result.stderr}`;
  return { gdb, vm: result, context };
}

describe('vmrun boot --gdb', () => {
  // Two vCPUs: vCPU 1 spins in the kernel's entry code, waiting for a stack that never comes.
  it('gdb breaks at a function, reads registers and variables, steps, and continues to the exit code', async () => {
    const { gdb, vm: result, context } = await debugSession('gdb-target', 2, [
      'info threads',
      'break gdb_tick',
      'continue',
      'info registers rip',
      'print step',
      'print gdb_ticks',
      'stepi',
      'print $pc == gdb_tick',
      'continue',
      'print step',
      'print gdb_ticks',
      'print/x $eflags & 0x2',
      'delete',
      'hbreak gdb_tick',
      'continue',
      'set var gdb_total = 100',
      'delete',
      'continue',
    ]);
    const out = gdb.stdout;
    // Stopped before the first instruction, at the kernel's entry point.
    expect(out, context).toMatch(/0x0*401082 in _start \(\)/);
    // Each vCPU is a thread; the second one spins in its entry code while the first is debugged.
    expect(out, context).toMatch(/\* 1 +Thread 1 \(vCPU 0\) 0x0*401082 in _start \(\)\n +2 +Thread 2 \(vCPU 1\) 0x0*401082 in _start \(\)/);
    expect(out, context).toMatch(/Breakpoint 1 at 0x401000: file gdb-target\/gdb_target\.c/);
    // First hit: step = 1, nothing counted yet; rip at the function.
    expect(out, context).toMatch(/Breakpoint 1, gdb_tick \(step=step@entry=1\)/);
    expect(out, context).toMatch(/rip +0x401000 +0x401000 <gdb_tick>/);
    expect(out, context).toMatch(/\$1 = 1\n\$2 = 0\n/);
    // stepi moved past the first instruction.
    expect(out, context).toMatch(/\$3 = 0\n/);
    // Second hit: the breakpoint was put back after the step over it.
    expect(out, context).toMatch(/Breakpoint 1, gdb_tick \(step=step@entry=2\)/);
    expect(out, context).toMatch(/\$4 = 2\n\$5 = 1\n\$6 = 0x2\n/);
    // A hardware breakpoint (Z1), then a memory write: total = 100 + 3 + 4 + 5.
    expect(out, context).toMatch(/Hardware assisted breakpoint 2 at 0x401000/);
    expect(out, context).toMatch(/Breakpoint 2, gdb_tick \(step=step@entry=3\)/);
    expect(out, context).toMatch(/\[Inferior 1 \(Remote target\) exited with code 03\]/);
    // The guest ran on to its own end: the rest of its output and its exit code.
    expect(result.stdout, context).toContain('gdb-target: ticks=5 total=112\n');
    expect(result.status, context).toBe(3);
  }, 300_000);

  it('a relocatable kernel is debugged at the offset vmrun names; after a detach it runs on to its end', async () => {
    // minimal.elf is a static PIE: under --gdb it is not placed at random, and vmrun says by how much it moved.
    let offset = '';
    const detached = await debugSession(
      'minimal',
      1,
      (stderr) => {
        offset = /symbol-file -o (0x[0-9a-f]+) /.exec(stderr)?.[1] ?? 'none';
        return [`symbol-file -o ${offset} ${hermitKernel('minimal')}`, 'break kernel_main', 'continue', 'print $pc == kernel_main', 'detach'];
      },
      true,
    );
    expect(offset, detached.context).toBe('0x40000');
    expect(detached.gdb.stdout, detached.context).toMatch(/Breakpoint 1, 0x0*4[0-9a-f]{4} in kernel_main \(\)\n\$1 = 1\n/);
    expect(detached.gdb.stdout, detached.context).toMatch(/\[Inferior 1 \(Remote target\) detached\]/);
    // The breakpoint went with the debugger: the kernel ran on to its own end.
    expect(detached.vm.stdout, detached.context).toBe('hermit: minimal\nhermit: exit 0\n');
    expect(detached.vm.status, detached.context).toBe(0);
  }, 300_000);

  it('a hostile client gets answers, not a crash: bad checksums, an oversized packet, huge and unmapped reads; a kill then ends vmrun with 137', async () => {
    const vm = bootWithGdb(hermitKernel('gdb-target'), 1);
    const address = await vm.address;
    const at = address.lastIndexOf(':');
    const socket = connect(Number(address.slice(at + 1)), address.slice(0, at));
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    const frame = (p: string) => `$${p}#${(Buffer.from(p, 'latin1').reduce((a, b) => a + b, 0) & 0xff).toString(16).padStart(2, '0')}`;
    /** Sends `bytes` and waits until what came back since then matches `reply`. */
    const exchange = async (bytes: string, reply: RegExp): Promise<string> => {
      const from = received.length;
      socket.write(Buffer.from(bytes, 'latin1'));
      const t0 = Date.now();
      while (!reply.test(received.slice(from))) {
        if (Date.now() - t0 > 60_000) throw new Error(`no ${reply} after ${JSON.stringify(bytes.slice(0, 80))}; got ${JSON.stringify(received.slice(from, from + 200))}\n${vm.stderr()}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return received.slice(from);
    };
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    await exchange('$?#00', /^-$/); // a wrong checksum: a nack, nothing done
    await exchange('not a packet at all ' + frame('?'), /^\+\$T05thread:1;#[0-9a-f]{2}$/); // bytes between packets are skipped
    await exchange(`$${'A'.repeat(20000)}#00`, /^\+\$E01#a6$/); // over PacketSize: refused whole
    const huge = await exchange(frame('m0,ffffffffffff'), /#[0-9a-f]{2}$/); // the length is capped at what a reply can hold
    expect(huge).toMatch(/^\+\$[0-9a-f]{16380}#[0-9a-f]{2}$/);
    await exchange(frame('mffffffffffff0000,10'), /^\+\$E0e#[0-9a-f]{2}$/); // not mapped
    await exchange(frame('m401000,10000000000000000'), /^\+\$E01#[0-9a-f]{2}$/); // 17 hex digits
    await exchange(frame('Xzz'), /^\+\$E01#[0-9a-f]{2}$/);
    await exchange(frame('p999'), /^\+\$E01#[0-9a-f]{2}$/);
    await exchange(frame('Hg99'), /^\+\$E01#[0-9a-f]{2}$/);
    await exchange(frame('qXfer:features:read:target.xml:0,ffff'), /^\+\$l<\?xml[^]*<\/target>#[0-9a-f]{2}$/);
    await exchange(frame('QStartNoAckMode'), /^\+\$OK#9a$/);
    await exchange(frame('vKill;1'), /^\$OK#9a$/); // no ack any more
    socket.end();
    const result = await vm.done;
    expect(result.stdout, result.stderr).toBe(''); // stopped before its first instruction
    expect(result.status, result.stderr).toBe(137);
  }, 300_000);
});
