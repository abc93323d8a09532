import { describe, expect, it } from 'vitest';
import { VmrunError } from '../../src/errors.js';
import { checkGdbOptions, parseGdbAddress } from '../../src/machine/gdb.js';
import { vmrun } from '../helpers/cli.js';

describe('--gdb [HOST:]PORT', () => {
  it('takes a port, a host and port, and a bracketed IPv6 address', () => {
    expect(parseGdbAddress('1234')).toEqual({ port: 1234 });
    expect(parseGdbAddress('0')).toEqual({ port: 0 });
    expect(parseGdbAddress('0.0.0.0:1234')).toEqual({ host: '0.0.0.0', port: 1234 });
    expect(parseGdbAddress('localhost:65535')).toEqual({ host: 'localhost', port: 65535 });
    expect(parseGdbAddress('[::1]:9')).toEqual({ host: '::1', port: 9 });
  });

  it.each([
    ['', 'the port is not a number from 0 to 65535'],
    ['65536', 'the port is not a number from 0 to 65535'],
    ['12ab', 'the port is not a number from 0 to 65535'],
    ['host:', 'the port is not a number from 0 to 65535'],
    [':1234', 'the host is empty'],
    ['::1:1234', 'write an IPv6 address in brackets'],
    ['a b:1', 'the host is not an address or name'],
  ])('refuses %j: %s', (value, why) => {
    let error: unknown;
    try {
      parseGdbAddress(value);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(VmrunError);
    expect((error as VmrunError).kind).toBe('usage');
    expect((error as VmrunError).message).toBe(`--gdb ${JSON.stringify(value)}: ${why} (expected [HOST:]PORT, like 1234 or 0.0.0.0:1234)`);
  });

  it('checks a library caller\'s options', () => {
    expect(checkGdbOptions({ port: 1 })).toEqual({ host: '127.0.0.1', port: 1 });
    expect(() => checkGdbOptions({ port: 1.5 })).toThrow('gdb.port must be an integer from 0 to 65535, not 1.5');
    expect(() => checkGdbOptions({ port: 1, host: '' })).toThrow('gdb.host must be a non-empty string');
  });

  it('the CLI prints one line and exits 125 before any VM exists', async () => {
    const r = await vmrun(['boot', '--gdb', 'localhost:http', 'no-such-kernel']);
    expect(r.stderr).toBe('vmrun: --gdb "localhost:http": the port is not a number from 0 to 65535 (expected [HOST:]PORT, like 1234 or 0.0.0.0:1234)\n');
    expect(r.stdout).toBe('');
    expect(r.status).toBe(125);
  });

  it('--gdb with --detach is refused', async () => {
    const r = await vmrun(['boot', '-d', '--gdb', '1234', 'no-such-kernel']);
    expect(r.stderr).toBe('vmrun: --gdb cannot be combined with --detach: the debugger is the foreground\n');
    expect(r.status).toBe(125);
  });
});
