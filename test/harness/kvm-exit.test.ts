/**
 * The KVM trace reader behind a triple fault's report: the event the guest was
 * taking (EXITINTINFO) and where its RIP is. The line is the one that located the
 * L2 triple fault (docs/testing.md), decoded there by hand.
 */
import { describe, expect, it } from 'vitest';
import { describeExitIntInfo, explainKvmExit, symbolizerFromNm } from './kvm-exit.js';

const SHUTDOWN = 'kvm_exit: vcpu 0 reason shutdown rip 0xffffffff811f8a78 info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x80000b0e error_code 0x00000010';
const NM = ['ffffffff811f8a00 T clockevents_program_event', 'ffffffff811f8a56 t pit_next_event', 'ffffffff811f8a80 D some_data', 'ffffffff811f8b00 T pit_shutdown'].join('\n');

describe('KVM exit trace lines', () => {
  it('decodes the pending event: valid bit, type, vector and error code', () => {
    expect(describeExitIntInfo(0x80000b0e, 0x10)).toBe('#PF (vector 14, exception), error code 0x10 (instruction fetch, page not present)');
    expect(describeExitIntInfo(0x80000b0e, 0x7)).toBe('#PF (vector 14, exception), error code 0x7 (write from user mode, protection violation)');
    expect(describeExitIntInfo(0x80000b0d, 0)).toBe('#GP (vector 13, exception), error code 0x0');
    expect(describeExitIntInfo(0x80000030, 0)).toBe('vector 48 (external interrupt)');
    expect(describeExitIntInfo(0x00000b0e, 0x10)).toBeUndefined(); // not valid: nothing pending
  });

  it('finds the symbol that holds an address, nearest below it, text only', () => {
    const symbolize = symbolizerFromNm(NM);
    expect(symbolize(0xffffffff811f8a78n)).toBe('pit_next_event+0x22');
    expect(symbolize(0xffffffff811f8a56n)).toBe('pit_next_event+0x0');
    expect(symbolize(0xffffffff811f8a90n)).toBe('pit_next_event+0x3a'); // data symbols do not count
    expect(symbolize(0xffffffff811f89ffn)).toBeUndefined();
  });

  it('appends the event and the place to a kvm_exit line, and leaves other lines alone', () => {
    expect(explainKvmExit(SHUTDOWN, symbolizerFromNm(NM))).toBe(
      `${SHUTDOWN}\n    (taking #PF (vector 14, exception), error code 0x10 (instruction fetch, page not present), at pit_next_event+0x22)`,
    );
    expect(explainKvmExit(SHUTDOWN.replace('0x80000b0e', '0x00000000'), undefined)).toBe(`${SHUTDOWN.replace('0x80000b0e', '0x00000000')}\n    (no event pending)`);
    const injected = 'kvm_inj_exception: #PF (0x10)';
    expect(explainKvmExit(injected, undefined)).toBe(injected);
  });
});
