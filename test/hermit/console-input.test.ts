// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
/**
 * Console input for Hermit guests (uhyve's fd 0 reads, SerialReadByte and
 * SerialReadBuffer), through `vmrun boot -i` on this host's /dev/kvm with the
 * console-input test kernel (fixtures/hermit).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { vmrun } from '../helpers/cli.js';
import { buildHermitKernels, hermitKernel } from './hermit-fixtures.js';

beforeAll(() => buildHermitKernels(), 120_000);

describe('vmrun boot -i: console input for a Hermit guest', () => {
  it('a read of fd 0 waits for the input, the serial reads take what is queued, end of input ends it', async () => {
    const r = await vmrun(['boot', '-i', hermitKernel('console-input'), '--memory', '16M'], { input: 'abc\nxyz', timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(
      [
        'hermit: console-input',
        // At most 4 bytes asked for: the rest stays queued for the next calls.
        'read: 4 [abc\\n]',
        'serial-byte: 1 [x]',
        'serial-buffer: 2 [yz]',
        // Standard input ended: end of input, not a wait.
        'read: 0 []',
        'hermit: exit 0',
        '',
      ].join('\n'),
    );
    expect(r.status).toBe(0);
  });

  it('without -i the guest sees end of input at once and nothing queued', async () => {
    const r = await vmrun(['boot', hermitKernel('console-input'), '--memory', '16M'], { input: 'ignored', timeoutMs: 60_000 });
    expect(r.stdout).toBe(['hermit: console-input', 'read: 0 []', 'serial-byte: 0 []', 'serial-buffer: 0 []', 'read: 0 []', 'hermit: exit 0', ''].join('\n'));
    expect(r.status).toBe(0);
  });
});
