/**
 * The parts of a stall report that read QEMU's `info registers -a` and map kernel
 * addresses to symbols, on text as QEMU 7.2 and /proc/kallsyms print it.
 */
import { describe, expect, it } from 'vitest';
import { KernelSymbols } from './kernel-symbols.js';
import { describeInstructionPointers, hexBytesOf, parseRegisterDump } from './stall-report.js';

// Two vCPUs as `info registers -a` showed them in a stall report (cut after CS).
const DUMP = `
CPU#0
RAX=000000000001ad40 RBX=0000000000000000 RCX=0000000000000001 RDX=4000000000000000
RIP=ffffffff81a592eb RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1
CS =0010 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]
CPU#1
RAX=000000000cac6a00 RBX=000000000cac6ae0 RCX=0000000000000001 RDX=0000000000000000
RIP=0000000000527cc3 RFL=00000202 [-------] CPL=3 II=0 A20=1 SMM=0 HLT=0
CS =0033 0000000000000000 ffffffff 00affb00 DPL=3 CS64 [-RA]
`;

// The kind of lines L1 saves from /proc/kallsyms (text symbols only).
const SYMBOLS = new KernelSymbols([
  'ffffffff81a59000 T default_idle',
  'ffffffff81a592c0 t native_safe_halt',
  'ffffffff81a59300 T arch_cpu_idle',
  'ffffffff81000000 T _stext',
].join('\n'));

describe('parseRegisterDump', () => {
  it('reads each vCPU\'s instruction pointer, privilege level, interrupt flag and halt state', () => {
    expect(parseRegisterDump(DUMP)).toEqual([
      { name: 'CPU#0', rip: 0xffffffff81a592ebn, cpl: 0, interruptsOn: true, halted: true },
      { name: 'CPU#1', rip: 0x527cc3n, cpl: 3, interruptsOn: true, halted: false },
    ]);
  });

  it('sees interrupts off when RFLAGS.IF is clear', () => {
    const [cpu] = parseRegisterDump('CPU#0\nRIP=ffffffff81a59310 RFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0\n');
    expect(cpu?.interruptsOn).toBe(false);
  });

  it('returns nothing for a monitor that answered with an error', () => {
    expect(parseRegisterDump('(no answer: no answer from QEMU\'s monitor in 10 s)')).toEqual([]);
  });
});

describe('KernelSymbols', () => {
  it('names the nearest symbol at or below an address, with the offset', () => {
    expect(SYMBOLS.symbolize(0xffffffff81a592ebn)).toBe('native_safe_halt+0x2b');
    expect(SYMBOLS.symbolize(0xffffffff81a59300n)).toBe('arch_cpu_idle+0x0');
  });

  it('names nothing below the first symbol or past the last', () => {
    expect(SYMBOLS.symbolize(0x527cc3n)).toBeUndefined();
    expect(SYMBOLS.symbolize(0xffffffff81a59301n)).toBeUndefined();
    expect(new KernelSymbols('').symbolize(0xffffffff81000000n)).toBeUndefined();
  });

  it('skips module symbols, whose addresses change from boot to boot', () => {
    const symbols = new KernelSymbols('ffffffffc0100000 t svm_vcpu_run\t[kvm_amd]\nffffffff81000000 T _stext');
    expect(symbols.symbols).toEqual([{ address: 0xffffffff81000000n, name: '_stext' }]);
  });
});

describe('describeInstructionPointers', () => {
  it('lists every sample per vCPU, kernel addresses by symbol', () => {
    expect(describeInstructionPointers([DUMP, DUMP], SYMBOLS)).toBe([
      'CPU#0:',
      '  ffffffff81a592eb native_safe_halt+0x2b (CPL 0, IF=1, halted)',
      '  ffffffff81a592eb native_safe_halt+0x2b (CPL 0, IF=1, halted)',
      'CPU#1:',
      '  0000000000527cc3 user space (CPL 3, IF=1)',
      '  0000000000527cc3 user space (CPL 3, IF=1)',
    ].join('\n'));
  });

  it('says so when no registers could be read', () => {
    expect(describeInstructionPointers(['(no answer)'], undefined)).toBe('(no registers could be read)');
  });
});

describe('hexBytesOf', () => {
  it('reads the bytes of an HMP x/Nxb answer, not its address', () => {
    expect(hexBytesOf('ffffffff81a5267b: 0x0f 0x1f 0x44 0x00 0x00 0xcc\r\n')).toBe('0f 1f 44 00 00 cc');
  });

  it('says what QEMU answered when there are no bytes', () => {
    expect(hexBytesOf('Cannot access memory\n')).toBe('(unreadable: Cannot access memory)');
  });
});
