// L1's console as the harness reads it: its own kernel's crash lines are told apart
// from the noise around them, so an L1 that died is reported (and re-run) as such.
import { describe, expect, it } from 'vitest';
import { L1Console } from './l1-console.js';

function consoleOf(text: string): L1Console {
  const c = new L1Console({ onProgress: () => {} });
  c.push(Buffer.from(text));
  return c;
}

describe("L1's kernel crash on its console", () => {
  it('is the first panic, oops or BUG line of the kernel (the stack-guard crash of 2026-12-07)', () => {
    const c = consoleOf(
      [
        'nested-kvm-init: command-start',
        '[   40.700548] kvm [197]: vcpu0, guest rIP: 0xffffffff81002ee9 Unhandled WRMSR(0xc0010007) = 0xffff',
        '[   57.803707] BUG: TASK stack guard page was hit at 000000000a2416a9 (stack is 0000000008c0c9cb..000000003acb4106)',
        '[   57.805957] stack guard page: 0000 [#1] PREEMPT SMP NOPTI',
        '[   98.019366] Kernel panic - not syncing: corrupted stack end detected inside scheduler',
        '',
      ].join('\r\n'),
    );
    expect(c.kernelCrash).toBe('[   57.803707] BUG: TASK stack guard page was hit at 000000000a2416a9 (stack is 0000000008c0c9cb..000000003acb4106)');
  });

  it("is not KVM's warnings, nor a command's own output that says BUG or panic", () => {
    const c = consoleOf(
      [
        '[   40.700548] kvm [197]: vcpu0, guest rIP: 0xffffffff81002ee9 Unhandled WRMSR(0xc0010007) = 0xffff',
        'BUG: this line has no kernel time stamp',
        'Kernel panic - not syncing: printed by a test, not the kernel',
        '[    3.100000] vmrun-guest: Oops: a guest program name',
        '',
      ].join('\n'),
    );
    expect(c.kernelCrash).toBe('');
  });
});
